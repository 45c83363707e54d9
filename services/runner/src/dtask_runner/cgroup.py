"""cgroup v2 plumbing: find this process's group, create, kill, wait for and remove groups."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

# How long a killed group may take to empty before it is left in place (with a warning).
EMPTY_TIMEOUT_S = 5.0
KILL_ROUNDS = 100  # without cgroup.kill: SIGKILL rounds over the group's pids before giving up


class CgroupError(Exception):
    """No cgroup v2 group can be had here; the message says why."""


def _unescape(field: str) -> str:
    """A mountinfo path field with its octal escapes (\\040 for a space) decoded."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def own_group(mountinfo: str, proc_cgroup: str) -> Path:
    """The directory of this process's cgroup v2 group, from /proc/self/mountinfo and /proc/self/cgroup."""
    path = next((line[3:] for line in proc_cgroup.splitlines() if line.startswith("0::")), None)
    if path is None:
        raise CgroupError("this process is in no cgroup v2 hierarchy (no 0:: line in /proc/self/cgroup)")
    path = path.removesuffix(" (deleted)")
    mounts = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if "-" not in fields:
            continue
        sep = fields.index("-")
        if len(fields) > sep + 1 and fields[sep + 1] == "cgroup2" and len(fields) > 4:
            mounts.append((_unescape(fields[3]), _unescape(fields[4])))
    if not mounts:
        raise CgroupError("no cgroup2 file system is mounted (see /proc/self/mountinfo)")
    for root, point in mounts:
        if path == root or path.startswith(root.rstrip("/") + "/"):
            return Path(point) / path[len(root) :].lstrip("/")
    raise CgroupError(f"this process's cgroup {path} is outside every cgroup2 mount")


def find_own_group() -> Path:
    """own_group() of this process."""
    try:
        with open("/proc/self/mountinfo") as f:
            mountinfo = f.read()
        with open("/proc/self/cgroup") as f:
            proc_cgroup = f.read()
    except OSError as exc:
        raise CgroupError(f"cannot read /proc/self: {exc.strerror or exc}") from None
    return own_group(mountinfo, proc_cgroup)


def read(group: Path, name: str) -> str:
    """A cgroup file's text (one open, one read: these files are small and read at once)."""
    fd = os.open(os.path.join(group, name), os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = [os.read(fd, 4096)]
        while chunks[-1]:
            chunks.append(os.read(fd, 4096))
        return b"".join(chunks).decode()
    finally:
        os.close(fd)


def write(group: Path, name: str, value: str) -> None:
    """Write a cgroup file in one write (the kernel takes each write as one command)."""
    fd = os.open(os.path.join(group, name), os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def populated(group: Path) -> bool:
    """Whether a live process is in the group or below it (cgroup.events; a missing group is empty)."""
    try:
        fd = os.open(os.path.join(group, "cgroup.events"), os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        return b"populated 1" in os.read(fd, 4096)
    except OSError:
        return False
    finally:
        os.close(fd)


def pids(group: Path) -> list[int]:
    """Every process in the group and the groups below it."""
    out: list[int] = []
    for d in _tree(group):
        with contextlib.suppress(OSError):
            out += [int(x) for x in read(d, "cgroup.procs").split()]
    return out


def _tree(group: Path, *, deepest_first: bool = False) -> list[Path]:
    """The group and every group below it: parents first, or (deepest_first) children first."""
    if not group.is_dir():
        return []
    out = [Path(parent) for parent, _, _ in os.walk(group)]  # top-down: an ancestor before its descendants
    return out[::-1] if deepest_first else out


def signal_all(group: Path, sig: int) -> None:
    """Send sig to every process in the group (and below)."""
    for pid in pids(group):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def kill(group: Path, *, kill_file: bool = True) -> None:
    """SIGKILL everything in the group and below: cgroup.kill (Linux 5.14+), else (or without
    kill_file) freeze the group and SIGKILL every pid until none is left (a frozen process cannot
    fork, and SIGKILL ends it all the same)."""
    if not group.is_dir():
        return
    if kill_file:
        with contextlib.suppress(OSError):  # no cgroup.kill (older kernel): pid by pid below
            write(group, "cgroup.kill", "1")
            return
    with contextlib.suppress(OSError):
        write(group, "cgroup.freeze", "1")
    for _ in range(KILL_ROUNDS):
        found = pids(group)
        if not found:
            return
        for pid in found:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.001)


def _delays(timeout: float) -> Iterator[float]:
    """0, then 1 ms doubling to 50 ms, until timeout has passed."""
    deadline = time.monotonic() + timeout
    delay = 0.0
    while time.monotonic() < deadline:
        yield delay
        delay = min(0.05, max(0.001, delay * 2))


def wait_empty(group: Path, timeout: float = EMPTY_TIMEOUT_S) -> bool:
    """Poll cgroup.events until `populated 0` (killed processes take a moment to go); whether it is empty."""
    for delay in _delays(timeout):
        time.sleep(delay)
        if not populated(group):
            return True
    return not populated(group)


async def wait_empty_async(group: Path, timeout: float = EMPTY_TIMEOUT_S) -> bool:
    """wait_empty() without blocking the event loop."""
    for delay in _delays(timeout):
        await asyncio.sleep(delay)
        if not populated(group):
            return True
    return not populated(group)


def remove_if_empty(group: Path) -> bool:
    """rmdir the group if nothing is in it (and no group below it); whether it is gone."""
    try:
        os.rmdir(group)
    except FileNotFoundError:
        pass
    except OSError:  # EBUSY: a process (or a group) is in it
        return False
    return True


def remove(group: Path) -> str:
    """rmdir the group and every group below it, deepest first; '' or why it could not."""
    try:
        os.rmdir(group)  # a group without groups below it (the usual case) goes without a walk
        return ""
    except FileNotFoundError:
        return ""
    except OSError as exc:
        if exc.errno not in (errno.EBUSY, errno.ENOTEMPTY):
            return f"cannot remove cgroup {group}: {exc.strerror or exc}"
    problem = ""
    for d in _tree(group, deepest_first=True):
        try:
            d.rmdir()
        except FileNotFoundError:
            pass
        except OSError as exc:
            problem = problem or f"cannot remove cgroup {d}: {exc.strerror or exc}"
    return problem


def kill_and_remove(group: Path, timeout: float = EMPTY_TIMEOUT_S, *, kill_file: bool = True) -> str:
    """kill(), wait_empty() and remove(); '' or what is left."""
    kill(group, kill_file=kill_file)
    if not wait_empty(group, timeout):
        return f"cgroup {group} still holds processes {pids(group)} after SIGKILL"
    return remove(group)
