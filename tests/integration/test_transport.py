"""The servers' HTTP/2 transport: what a stream of sparse reports (a runner's usage at 1 Hz) costs in frames.

A real gRPC server with the services' options (SERVER_OPTIONS) on plain TCP, behind a real TCP proxy that
reads the HTTP/2 frames the server sends (mTLS would hide them; the options are the same).
"""

from __future__ import annotations

import asyncio
import struct
from collections import Counter
from collections.abc import AsyncIterator

import grpc
from dtask_common.server import SERVER_OPTIONS, STREAM_WINDOW_BYTES
from grpc import aio

PING, SETTINGS, GOAWAY, WINDOW_UPDATE = 6, 4, 7, 8
ACK = 1
SETTINGS_INITIAL_WINDOW_SIZE, SETTINGS_MAX_FRAME_SIZE = 4, 5
MESSAGES = 20
SPACING_S = 0.05  # the traffic's shape (sparse messages), not a wait for anything


async def _sink(requests: AsyncIterator[bytes], context: object) -> AsyncIterator[bytes]:
    n = 0
    async for _ in requests:
        n += 1
    yield b"%d" % n


class _FrameProxy:
    """Forwards one TCP connection to the server, parsing the frames the server sends."""

    def __init__(self, port: int):
        self.port = port
        self.frames: list[tuple[int, int, bytes]] = []  # (type, flags, payload)
        self.done = asyncio.Event()

    async def _pipe(self, r: asyncio.StreamReader, w: asyncio.StreamWriter, parse: bool) -> None:
        buf = b""
        try:
            while data := await r.read(65536):
                w.write(data)
                await w.drain()
                if parse:
                    buf += data
                    while len(buf) >= 9 and len(buf) >= 9 + (n := int.from_bytes(buf[:3], "big")):
                        self.frames.append((buf[3], buf[4], buf[9 : 9 + n]))
                        buf = buf[9 + n :]
        except ConnectionError:
            pass
        finally:
            w.close()

    async def handle(self, cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        sr, sw = await asyncio.open_connection("127.0.0.1", self.port)
        await asyncio.gather(self._pipe(cr, sw, False), self._pipe(sr, cw, True))
        self.done.set()


async def _frames_of_sparse_stream() -> list[tuple[int, int, bytes]]:
    server = aio.server(options=list(SERVER_OPTIONS))
    handler = grpc.stream_stream_rpc_method_handler(_sink)
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("t.Sink", {"Take": handler})])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    proxy = _FrameProxy(port)
    listener = await asyncio.start_server(proxy.handle, "127.0.0.1", 0)
    try:
        address = f"127.0.0.1:{listener.sockets[0].getsockname()[1]}"
        async with aio.insecure_channel(address) as ch:
            call = ch.stream_stream("/t.Sink/Take")()
            for _ in range(MESSAGES):
                await call.write(b"u" * 120)  # about a usage sample's size
                await asyncio.sleep(SPACING_S)
            await call.done_writing()
            assert [r async for r in call] == [b"%d" % MESSAGES]
            await server.stop(None)  # it closes the connection: the proxy has read every frame when it ends
            await asyncio.wait_for(proxy.done.wait(), 10)
        return proxy.frames
    finally:
        listener.close()
        await server.stop(None)


def test_sparse_reports_cost_no_pings_and_few_window_updates() -> None:
    frames = asyncio.run(asyncio.wait_for(_frames_of_sparse_stream(), 60))
    end = next((i for i, (t, _f, _p) in enumerate(frames) if t == GOAWAY), len(frames))
    kinds = Counter((t, f & ACK) for t, f, _ in frames[:end])  # not the server's stop (a GOAWAY and its ping)
    # No bandwidth-probing pings (before: about one per message, each answered by the peer).
    assert kinds[(PING, 0)] == 0, kinds
    # Window updates only as the window drains (before: one or two per message).
    assert kinds[(WINDOW_UPDATE, 0)] <= MESSAGES // 4, kinds
    # The window and frame size are still the 4 MiB the server announced with probing on.
    settings = [f for t, f, p in frames if t == SETTINGS and not f & ACK]
    announced = {
        sid: value
        for t, fl, p in frames
        if t == SETTINGS and not fl & ACK
        for sid, value in (struct.unpack(">HI", p[i : i + 6]) for i in range(0, len(p), 6))
    }
    assert settings, kinds
    assert announced[SETTINGS_INITIAL_WINDOW_SIZE] == STREAM_WINDOW_BYTES, announced
    assert announced[SETTINGS_MAX_FRAME_SIZE] == STREAM_WINDOW_BYTES, announced
