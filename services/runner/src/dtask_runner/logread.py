"""Answering the controller's reads of an attempt's output log: only this runner's own logs, read off the event loop."""

from __future__ import annotations

import asyncio
import errno
import os
import stat
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from dtask_common.ids import is_task_id
from dtask_common.models import OutputReadReport, ReadOutputCmd

from dtask_runner.attempt_request import safe_stem

if TYPE_CHECKING:
    from dtask_runner.runner import Runner

MAX_READ = 8 * 1024 * 1024  # at most this much in one reply, whatever is asked (well under the message limit)


def read_log(log_dir: Path, cmd: ReadOutputCmd, running: bool) -> OutputReadReport:
    """The reply to one read: up to max_bytes of the attempt's log from offset (eof once it ended and ends
    there), or why this runner will not or cannot read it."""

    def refuse(why: str) -> OutputReadReport:
        return OutputReadReport(cmd.request_id, cmd.offset, error=why)

    what = f"attempt {cmd.task_id!r}/{cmd.attempt}" if len(cmd.task_id) <= 40 else "that attempt"
    if not is_task_id(cmd.task_id) or cmd.attempt < 1:
        return refuse(f"{what} is not one this runner ran")
    if cmd.offset < 0 or cmd.max_bytes < 1:
        return refuse(f"a read of {cmd.max_bytes} bytes at offset {cmd.offset} is not a range")
    path = log_dir / f"{safe_stem(cmd.task_id, cmd.attempt)}.log"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except FileNotFoundError:
        return refuse(
            f"this runner has no log of {what} (it did not run it here, or its log was removed by the runner's log retention)"
        )
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return refuse(f"the log of {what} is a symbolic link, not one this runner wrote")
        return refuse(f"cannot open the log of {what}: {exc.strerror or exc}")
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return refuse(f"the log of {what} is not a regular file")
        data = os.pread(fd, min(cmd.max_bytes, MAX_READ), cmd.offset)
    except OSError as exc:
        return refuse(f"cannot read the log of {what}: {exc.strerror or exc}")
    finally:
        os.close(fd)
    eof = not running and cmd.offset + len(data) >= st.st_size
    return OutputReadReport(cmd.request_id, cmd.offset, data, eof)


def log_size(log_dir: Path, task_id: str, attempt: int) -> int:
    """How many bytes the attempt's log holds now (0 when there is none: read_log then says why)."""
    try:
        return os.stat(log_dir / f"{safe_stem(task_id, attempt)}.log", follow_symlinks=False).st_size
    except (OSError, ValueError):
        return 0


async def answer(runner: Runner, cmd: ReadOutputCmd, send: Callable[[OutputReadReport], Awaitable[bool]]) -> bool:
    """Read in a worker thread (the session goes on meanwhile) and send the reply; False when it was not sent."""
    # Whether it runs is taken before the read: one that ends meanwhile is not called ended, and asked again.
    running = (cmd.task_id, cmd.attempt) in runner.launcher.running
    runner.retention.note_read(cmd.task_id, cmd.attempt)  # retention keeps it while the reads go on
    report = await asyncio.to_thread(read_log, runner.log_dir, cmd, running)
    return await send(report)


def answer_soon(
    runner: Runner,
    cmd: ReadOutputCmd,
    send: Callable[[OutputReadReport], Awaitable[bool]],
    tasks: set[asyncio.Task[bool]],
) -> None:
    """Answer a read in the background; the task is kept in tasks until it is done."""
    task = asyncio.get_running_loop().create_task(answer(runner, cmd, send), name=f"read {cmd.request_id}")
    tasks.add(task)
    task.add_done_callback(tasks.discard)
