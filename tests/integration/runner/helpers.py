"""Helpers for runner tests: wait for processes to exit, wait for a file a task writes."""

from __future__ import annotations

import os
import select
import time
from pathlib import Path


def survivors(pids: list[int], timeout: float = 10.0) -> list[int]:
    """Wait on pidfds (readable once a process exits) until every pid has exited; the ones still alive."""
    fds = {}
    for pid in pids:
        try:
            fds[os.pidfd_open(pid)] = pid
        except ProcessLookupError:
            pass
    try:
        deadline = time.monotonic() + timeout
        pending = set(fds)
        while pending and time.monotonic() < deadline:
            ready, _, _ = select.select(list(pending), [], [], max(0.0, deadline - time.monotonic()))
            pending -= set(ready)
        return sorted(fds[fd] for fd in pending)
    finally:
        for fd in fds:
            os.close(fd)


def gone(pids: list[int], timeout: float = 10.0) -> bool:
    """Whether every pid exits within timeout."""
    return not survivors(pids, timeout)


def wait_file(path: Path, lines: int = 3, timeout: float = 20.0) -> str:
    """The text of a file a task writes, once it has `lines` lines (bounded poll: no event reaches the test)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().count("\n") >= lines:
            return path.read_text()
        time.sleep(0.02)
    raise TimeoutError(f"{path} not written")
