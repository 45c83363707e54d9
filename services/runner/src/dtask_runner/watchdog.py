"""Watchdog process: kills every task process when the runner dies, even by SIGKILL.

The runner starts one watchdog (`python -m dtask_runner.watchdog TOKEN`) in its own session with
a pipe on its stdin, and writes `+PGID` / `-PGID` lines as task groups start and end (an end
goes with the next start: one write, one wakeup of the watchdog per task). Every task
also carries `DTASK_RUNNER_TOKEN=TOKEN` in its environment. When the pipe reaches end of file
(the runner exited or was killed), the watchdog sends SIGKILL to every group still registered,
then to every process whose environment carries the token: that covers a task started in the
instant before its group was registered, and descendants that left their group (setsid). Scans
repeat until one finds nothing. A runner that stops cleanly writes `.` first: it has stopped its
tasks and starts none, so only the registered groups are killed. A runner whose attempts run in
cgroups (`python -m dtask_runner.watchdog TOKEN CGROUP`) also has the watchdog kill and remove its
cgroup, with every attempt's group below: that takes tasks that left both their group and their
environment behind. Such a runner writes no `+PGID` / `-PGID` lines: its cgroup holds every task that runs
(a task runs only once it is in its attempt's group), so the watchdog sleeps until the runner ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from dtask_runner import cgroup

TOKEN_ENV = "DTASK_RUNNER_TOKEN"
# After an unclean end, scan again this long after the first scan: a task whose spawn was under
# way when the runner died has executed by then and shows the token.
RESCAN_AFTER_S = 0.1
REMOVE_DELAY_S = 0.5
MAX_SCANS = 50


def carriers(entries: Sequence[bytes]) -> list[int]:
    """Pids of the processes (other than this one) whose environment holds every entry (b"KEY=value")."""
    needles = [e + b"\0" for e in entries]
    me = os.getpid()
    found = []
    try:
        names = os.listdir("/proc")
    except OSError:
        return []
    for name in names:
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                env = f.read()
        except OSError:
            continue
        if all(env.startswith(n) or b"\0" + n in env for n in needles):
            found.append(int(name))
    return found


def _kill_carriers(token: bytes) -> None:
    for scan in range(MAX_SCANS):
        pids = carriers([f"{TOKEN_ENV}=".encode() + token])
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        if not pids and scan > 0:
            return
        time.sleep(RESCAN_AFTER_S if not pids else 0.01)


def main(argv: list[str]) -> int:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    token = argv[0].encode() if argv else b""
    group = Path(argv[1]) if len(argv) > 1 and argv[1] else None
    groups: set[int] = set()
    clean = False
    stdin = sys.stdin.buffer
    for raw in stdin:
        for line in raw.split():
            if line == b".":
                clean = True
                continue
            if len(line) < 2 or not line[1:].isdigit():
                continue
            pgid = int(line[1:])
            if line[:1] == b"+":
                groups.add(pgid)
            elif line[:1] == b"-":
                groups.discard(pgid)
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
    if group is not None:
        cgroup.kill_and_remove(group)
    if token and not clean:
        _kill_carriers(token)
    return 0


class Watchdog:
    """The runner's handle on its watchdog process."""

    def __init__(self, token: str = "", cgroup: str = "") -> None:
        self.token = token
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "dtask_runner.watchdog", *([token, cgroup] if cgroup else [token] if token else [])],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
        )
        self._fd = self._proc.stdin.fileno() if self._proc.stdin is not None else -1
        self._removed: list[bytes] = []
        self._timer: asyncio.TimerHandle | None = None

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def alive(self) -> bool:
        return self._proc.poll() is None

    def _send(self, line: bytes) -> None:
        if self._fd < 0:
            return
        try:
            os.write(self._fd, line)  # short lines into a pipe: one atomic write
        except OSError:
            pass

    def add(self, pgid: int) -> None:
        self._send(self._take_removed() + b"+%d\n" % pgid)

    def remove(self, pgid: int) -> None:
        """Forget a group that is gone (told with the next add, or within REMOVE_DELAY_S: a group id
        comes back only after the system has used every other process id)."""
        self._removed.append(b"-%d\n" % pgid)
        if self._timer is None:
            try:
                self._timer = asyncio.get_running_loop().call_later(REMOVE_DELAY_S, self._flush_removed)
            except RuntimeError:
                self._flush_removed()

    def _take_removed(self) -> bytes:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        removed, self._removed = b"".join(self._removed), []
        return removed

    def _flush_removed(self) -> None:
        self._timer = None
        removed = self._take_removed()
        if removed:
            self._send(removed)

    def close(self) -> None:
        """Stop the watchdog (it kills what is still registered or carries the token)."""
        self._send(self._take_removed() + b".\n")
        self._fd = -1
        if self._proc.stdin is not None:
            with contextlib.suppress(OSError, ValueError):
                self._proc.stdin.close()
        try:
            self._proc.wait(5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(5)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
