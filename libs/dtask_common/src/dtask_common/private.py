"""Files and directories only their owner may use: dtask's home, keys, store, logs and journals."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Create path and every missing parent as 0700, whatever the umask; existing directories are left alone."""
    missing: list[Path] = []
    p = path
    while not os.path.lexists(p) and p != p.parent:
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        try:
            os.mkdir(d, DIR_MODE)
        except FileExistsError:
            continue
        os.chmod(d, DIR_MODE)  # mkdir's mode went through the umask (which may also have been stricter)
    if not path.is_dir():
        raise FileExistsError(errno.EEXIST, "exists and is not a directory", str(path))
    return path


def open_private(path: Path, flags: int) -> int:
    """os.open with O_CREAT as 0600 whatever the umask; an existing file of ours is made 0600 too."""
    fd = os.open(path, flags | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
    with contextlib.suppress(PermissionError):
        if stat.S_IMODE(os.fstat(fd).st_mode) != FILE_MODE:
            os.fchmod(fd, FILE_MODE)
    return fd


def touch_private(path: Path) -> None:
    """Create an empty 0600 file (or make an existing one 0600), parents 0700."""
    private_dir(path.parent)
    os.close(open_private(path, os.O_RDONLY))


def write_private(path: Path, data: bytes) -> None:
    """Write a whole 0600 file (a private key), parents 0700."""
    private_dir(path.parent)
    fd = open_private(path, os.O_WRONLY | os.O_TRUNC)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def loose(path: Path, what: str = "dtask's home, with its keys") -> str:
    """A one-line warning when an existing directory lets its group or others in ('' when not)."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return ""
    if not mode & 0o077:
        return ""
    return (
        f"{path} ({what}) is mode {mode:04o}: its group and others may enter it; make it private with chmod 700 {path}"
    )


def warn_if_loose(path: Path, log: logging.Logger) -> None:
    """Log the one-line warning of `loose` when it applies."""
    message = loose(path)
    if message:
        log.warning("%s", message)
