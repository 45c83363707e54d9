"""Tasks run as another user (runner.run_as): who that is, how to spawn as them, the work dir they own."""

from __future__ import annotations

import contextlib
import os
import pwd
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dtask_common.private import DIR_MODE, loose, private_dir

from dtask_runner.results import MAX_RESULT_FILE


class RunAsError(Exception):
    """runner.run_as cannot be honoured; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class TaskUser:
    """The account every task of this runner runs as: its uid, primary group and supplementary groups."""

    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str

    def spawn_args(self) -> dict[str, Any]:
        """subprocess.Popen arguments: the user, their primary group, and their own supplementary groups
        (from the group database, e.g. `video` for GPU devices; never the runner's)."""
        return {"user": self.uid, "group": self.gid, "extra_groups": list(self.groups)}

    def env(self) -> dict[str, str]:
        """The variables that name the user (the runner's own would name root)."""
        return {"HOME": self.home, "USER": self.name, "LOGNAME": self.name}


def task_user(name: str) -> TaskUser | None:
    """The TaskUser for runner.run_as (None when unset); RunAsError unless this process is root and the user exists."""
    if not name:
        return None
    if os.geteuid() != 0:
        raise RunAsError(
            f"--run-as {name} (runner.run_as) needs a runner started as root, and this one runs as "
            f"uid {os.geteuid()}: start it as root, or drop the option"
        )
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        raise RunAsError(
            f"--run-as {name}: there is no user {name!r} on this machine (create it, e.g. useradd --system {name})"
        ) from None
    groups = tuple(sorted(g for g in os.getgrouplist(pw.pw_name, pw.pw_gid) if g != pw.pw_gid))
    return TaskUser(pw.pw_name, pw.pw_uid, pw.pw_gid, groups, pw.pw_dir or "/")


def check_private(home: Path, others: dict[Path, str], user: TaskUser) -> None:
    """With tasks of another user, a home they may enter is an error (not only a warning): so are the
    certificates' and the logs' directories when they lie outside it and let others in."""
    dirs = {
        home: "dtask's home, with its keys",
        **{d: what for d, what in others.items() if d != home and home not in d.parents},
    }
    for d, what in dirs.items():
        message = loose(d, what)
        if message:
            raise RunAsError(f"{message}: tasks run as {user.name} must not reach it")


def prepare_work_dir(path: Path, home: Path, user: TaskUser) -> None:
    """Make the work dir the user's: created here (0700, then given to the user), or already theirs; and
    reachable by them. RunAsError says what to change otherwise."""
    if path == home or home in path.parents:
        raise RunAsError(
            f"the work dir {path} is inside DTASK_HOME ({home}), which only root may enter: give "
            f"--work-dir (runner.work_dir) a directory outside it that {user.name} can reach"
        )
    created = False
    if not os.path.lexists(path):
        private_dir(path.parent)
        with contextlib.suppress(FileExistsError):
            os.mkdir(path, DIR_MODE)
            created = True
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise RunAsError(
            f"the work dir {path} is not a directory ({exc.strerror or exc}): give --work-dir a directory"
        ) from None
    try:
        if created:
            os.fchown(fd, user.uid, user.gid)
            os.fchmod(fd, DIR_MODE)
        elif os.fstat(fd).st_uid != user.uid:
            raise RunAsError(
                f"the work dir {path} belongs to uid {os.fstat(fd).st_uid}, not to {user.name}: "
                f"chown {user.name} {path}, or give --work-dir a new directory (the runner creates "
                f"it for {user.name})"
            )
    finally:
        os.close(fd)
    probe = subprocess.run(
        ["/bin/sh", "-c", 'cd "$1" && test -w . -a -x .', "sh", str(path)],
        cwd="/",
        env={"PATH": os.defpath},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
        **user.spawn_args(),
    )
    if probe.returncode != 0:
        raise RunAsError(
            f"{user.name} cannot enter the work dir {path}: let them search every directory "
            f"above it (chmod o+x), or give --work-dir a directory they can reach"
        )


def read_result_file(path: Path, user: TaskUser | None) -> bytes | None:
    """The bytes of an attempt's result file, or None. A task running as another user writes it in a
    directory of theirs: it counts only as a regular file they own (not a link to one of root's)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or (user is not None and st.st_uid != user.uid):
            return None
        chunks, left = [], MAX_RESULT_FILE + 1  # larger is refused: one byte more tells
        while left > 0:
            data = os.read(fd, left)
            if not data:
                break
            chunks.append(data)
            left -= len(data)
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)
