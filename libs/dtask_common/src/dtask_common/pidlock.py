"""A lock file held with fcntl by one process, with that process's pid in it for the message that refuses a second."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from dtask_common.private import open_private


class LockHeld(RuntimeError):
    """Another process holds the lock; holder is the pid it wrote there ('' when the file has none yet)."""

    def __init__(self, path: Path, holder: str) -> None:
        super().__init__(f"{path} is held by another process (pid {holder or 'unknown'})")
        self.path = path
        self.holder = holder


class PidLock:
    """An exclusive lock on a 0600 file naming the holder's pid; released on close, or when the holder exits."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        fd = open_private(self.path, os.O_RDWR)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise LockHeld(self.path, os.read(fd, 64).decode(errors="replace").strip()) from None
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())
        except BaseException:
            os.close(fd)
            raise
        self._fd: int | None = fd

    def close(self) -> None:
        """Release the lock (the file and the pid in it stay); a second close does nothing."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> PidLock:
        return self

    def __exit__(self, typ: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
