"""An attempt's log file: created anew, on the event loop while creates are quick, in a thread while they wait."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from dtask_common.private import open_private

# A create that takes longer than this waited on the file system (its journal, under load) ...
SLOW_S = 0.00025
# ... and the logs of this many attempts after it are created in a worker thread, then on the loop again.
THREADED_AFTER_SLOW = 200


def create_log(log: Path, stale: tuple[Path, ...]) -> int:
    """The log, empty and private (its fd), with the stale files of an earlier run of the attempt removed."""
    fd = open_private(log, os.O_WRONLY | os.O_TRUNC)
    for path in stale:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    return fd


def log_problem(log: Path, exc: OSError) -> str:
    """Why an attempt cannot run when its log cannot be created."""
    return f"cannot create its log {log}: {exc.strerror or exc}; make the runner's --log-dir writable"


class LogCreation:
    """Where the runner creates logs: on the event loop (a hop to a worker thread and back costs about 0.1 ms of
    CPU, more than a create usually takes), or in a thread for THREADED_AFTER_SLOW attempts after a create took
    longer than SLOW_S, so that a file system that makes creates wait does not stall the loop at every attempt."""

    def __init__(self) -> None:
        self._threaded = 0  # attempts still to create their log in a thread

    def inline(self) -> bool:
        """Whether the next log is created on the loop."""
        if self._threaded:
            self._threaded -= 1
            return False
        return True

    def took(self, seconds: float) -> None:
        """A create on the loop took this long."""
        if seconds > SLOW_S:
            self._threaded = THREADED_AFTER_SLOW
