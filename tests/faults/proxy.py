"""A TCP proxy for fault tests: forwards bytes both ways and can reset, blackhole or refuse the link."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Iterator

BUF = 64 * 1024


def _rst(sock: socket.socket) -> None:
    """Close with a TCP reset (SO_LINGER 0), as a broken link or a restarted middlebox does."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


class _Link:
    """One proxied connection: a pump thread per direction."""

    def __init__(self, proxy: TcpProxy, client: socket.socket, epoch: int):
        self.proxy = proxy
        self.client = client
        self.upstream: socket.socket | None = None
        self.epoch = epoch  # the blackhole generation it was accepted in (for new connections held)
        self.closed = threading.Event()
        self.flowing = threading.Event()
        self.flowing.set()
        self._ended = 0

    def start(self) -> None:
        threading.Thread(target=self._open, daemon=True).start()

    def _open(self) -> None:
        # A connection accepted while the link is blackholed gets no answer until it flows again.
        if not self.proxy._wait_flowing(self):
            return
        try:
            self.upstream = socket.create_connection(self.proxy.target, timeout=5)
            self.upstream.settimeout(None)
        except OSError:
            self.close()
            return
        threading.Thread(target=self._pump, args=(self.client, self.upstream, "up"), daemon=True).start()
        self._pump(self.upstream, self.client, "down")

    def _pump(self, src: socket.socket, dst: socket.socket, direction: str = "") -> None:
        while not self.closed.is_set():
            try:
                data = src.recv(BUF)
            except OSError:
                data = b""
            # While blackholed, what was read waits here: nothing passes, nothing is closed.
            if not self.proxy._wait_flowing(self, direction):
                return
            if not data:
                with contextlib.suppress(OSError):
                    dst.shutdown(socket.SHUT_WR)
                with self.proxy._lock:
                    self._ended += 1
                    both = self._ended == 2
                if both:
                    self.close()
                return
            try:
                dst.sendall(data)
            except OSError:
                self.close()
                return

    def close(self) -> None:
        self.closed.set()
        with self.proxy._lock:
            self.proxy._links.discard(self)
        _rst(self.client)
        if self.upstream is not None:
            _rst(self.upstream)


class TcpProxy:
    """127.0.0.1:port → target. Modes: up (forward), blackhole (hold every byte, close nothing),
    down (reset every connection and refuse new ones). `reset()` breaks the current connections once."""

    def __init__(self, target: str):
        host, _, port = target.rpartition(":")
        self.target = (host, int(port))
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._lock = threading.Lock()
        self._links: set[_Link] = set()
        self._flowing = threading.Event()
        self._flowing.set()
        # Per direction: "up" is client → target, "down" is target → client.
        self._one_way = {"up": threading.Event(), "down": threading.Event()}
        for e in self._one_way.values():
            e.set()
        self._refusing = False
        self._stopped = False
        self.accepted = 0
        threading.Thread(target=self._accept_loop, daemon=True).start()

    def _accept_loop(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                if self._stopped or self._refusing:
                    _rst(client)
                    continue
                self.accepted += 1
                link = _Link(self, client, self.accepted)
                self._links.add(link)
            link.start()

    def _wait_flowing(self, link: _Link, direction: str = "") -> bool:
        """Block while blackholed (the whole proxy, this link, or this direction); False once the link closed."""
        one_way = self._one_way.get(direction, self._flowing)
        while not (self._flowing.wait(0.05) and link.flowing.wait(0.05) and one_way.wait(0.05)):
            if link.closed.is_set():
                return False
        return not link.closed.is_set()

    def reset(self) -> int:
        """Reset every current connection (both sides see a TCP RST); returns how many."""
        with self._lock:
            links, self._links = self._links, set()
        for link in links:
            link.close()
        return len(links)

    def blackhole(self, direction: str = "both") -> None:
        """Stop forwarding without closing anything (a silent partition: TCP just waits); "up" or "down"
        holds one direction only."""
        if direction == "both":
            self._flowing.clear()
        else:
            self._one_way[direction].clear()

    def half_open(self) -> None:
        """Blackhole the current connections for good; new ones pass (a NAT or firewall that forgot them)."""
        with self._lock:
            links = list(self._links)
        for link in links:
            link.flowing.clear()

    def down(self) -> None:
        """Reset every connection and refuse new ones (an unreachable peer)."""
        with self._lock:
            self._refusing = True
        self.reset()

    def restore(self) -> None:
        """Forward again; held bytes and held connections go through."""
        with self._lock:
            self._refusing = False
        for e in self._one_way.values():
            e.set()
        self._flowing.set()

    def close(self) -> None:
        with self._lock:
            self._stopped = True
        with contextlib.suppress(OSError):
            self._listener.close()
        self._flowing.set()
        self.reset()


@contextlib.contextmanager
def proxy_to(target: str) -> Iterator[TcpProxy]:
    p = TcpProxy(target)
    try:
        yield p
    finally:
        p.close()
