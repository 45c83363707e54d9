"""Fault-test helpers: a real controller and runners with short liveness timeouts, bounded waits on task
state, processes that see a read-only directory or a small filesystem, one-line error checks."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from dtask_client import Controller
from dtask_common.models import Task, TaskState

from tests.support import BIN, Proc, free_port_range, spawn, start_dtask


def controller_proc(
    home: Path,
    *settings: str,
    port_range: tuple[int, int] | None = None,
    dead_after_s: float = 1.0,
    lost_after_s: float = 2.0,
) -> Proc:
    lo, hi = port_range or free_port_range()
    sets = ["--set", f"controller.dead_after_s={dead_after_s}", "--set", f"controller.lost_after_s={lost_after_s}"]
    for s in settings:
        sets += ["--set", s]
    return start_dtask([*sets, "controller", "--host", "127.0.0.1", "--port-range", f"{lo}-{hi}"], home)


def client(home: Path, address: str, timeout: float = 10) -> Controller:
    return Controller(address, certs=home / "certs", timeout=timeout)


def until(c: Controller, task_id: str, check: Callable[[Task], bool], timeout: float = 20.0, what: str = "") -> Task:
    """Poll GetTask until check(task) holds (bounded: the controller pushes no event for every change)."""
    deadline = time.monotonic() + timeout
    while True:
        t = c.task(task_id)
        if check(t):
            return t
        if time.monotonic() > deadline:
            raise TimeoutError(f"task {task_id}: {what or 'condition'} not reached; last seen {t}")
        time.sleep(0.05)


def running_on(c: Controller, task_id: str, timeout: float = 20.0) -> Task:
    return until(c, task_id, lambda t: t.state is TaskState.RUNNING and bool(t.attempts), timeout, "running")


def stop_all(*procs: Proc) -> None:
    for p in procs:
        p.stop()


def start_in_readonly_view(args: list[str], home: Path, readonly: Path) -> Proc:
    """`dtask ARGS` seeing `readonly` as a read-only directory: chmod for a normal user; for root (whom
    permissions do not stop), a read-only bind mount in a private mount namespace."""
    env = dict(os.environ, DTASK_HOME=str(home), PYTHONUNBUFFERED="1")
    env.pop("DTASK_CONFIG", None)
    argv = [str(BIN / "dtask"), *args]
    if os.geteuid() == 0:
        unshare = shutil.which("unshare")
        if unshare is None or subprocess.run([unshare, "-m", "true"], capture_output=True).returncode != 0:
            pytest.skip("running as root without mount namespaces: cannot make a directory read-only")
        argv = [unshare, "-m", "sh", "-c", 'mount --bind -o ro "$0" "$0" && exec "$@"', str(readonly), *argv]
    else:
        readonly.chmod(0o555)
    return spawn(argv, env)


def assert_clear_error(rc: int, out: str, *must: str) -> None:
    assert rc != 0, out
    assert "Traceback" not in out, out
    errors = [line for line in out.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, out
    for text in must:
        assert text in errors[0], out


def exit_output(proc: Proc, timeout: float = 20.0) -> tuple[int, str]:
    """Wait for a process that must exit by itself; its exit code and its whole output."""
    try:
        rc = proc.popen.wait(timeout)
    finally:
        proc.kill9()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # the reader thread ends the queue with None at end of output
        if proc._q.get(timeout=max(0.01, deadline - time.monotonic())) is None:
            break
    return rc, "".join(proc.lines)


def start_on_small_fs(args: list[str], home: Path, mount: Path, size: str = "64k") -> Proc:
    """`dtask ARGS` with a tmpfs of `size` mounted on `mount`, in a private mount namespace (root only).
    The test reaches that filesystem through /proc/PID/root (see fill_fs)."""
    unshare = shutil.which("unshare")
    if os.geteuid() != 0 or unshare is None or subprocess.run([unshare, "-m", "true"], capture_output=True).returncode:
        pytest.skip("needs root and mount namespaces to give a process a small filesystem")
    mount.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, DTASK_HOME=str(home), PYTHONUNBUFFERED="1")
    env.pop("DTASK_CONFIG", None)
    argv = [
        unshare,
        "-m",
        "sh",
        "-c",
        f'mount -t tmpfs -o size={size} tmpfs "$0" && exec "$@"',
        str(mount),
        str(BIN / "dtask"),
        *args,
    ]
    return spawn(argv, env)


def fill_fs(proc: Proc, mount: Path) -> int:
    """Fill the process's small filesystem on `mount` to the last byte; returns the bytes written."""
    filler = Path(f"/proc/{proc.popen.pid}/root") / mount.relative_to("/") / "filler"
    written = 0
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                written += f.write(b"\0" * 4096)
        except OSError:
            pass
        try:
            while True:
                written += f.write(b"\0")
        except OSError:
            pass
    return written
