"""Reaping a child: a future of its wait status and rusage, resolved when its pidfd becomes readable."""

from __future__ import annotations

import asyncio
import os
from resource import struct_rusage

Exit = tuple[int, struct_rusage | None]
"""A reaped child's wait status and rusage (None when another waiter reaped it first)."""


def wait_exit(loop: asyncio.AbstractEventLoop, pid: int) -> asyncio.Future[Exit]:
    """A future of (wait status, rusage) for a child, reaped with wait4 when its pidfd is readable."""
    fut: asyncio.Future[Exit] = loop.create_future()

    def reap() -> bool:
        try:
            wpid, status, rusage = os.wait4(pid, os.WNOHANG)
        except ChildProcessError:
            if not fut.done():
                fut.set_result((0, None))
            return True
        if wpid == 0:
            return False
        if not fut.done():
            fut.set_result((status, rusage))
        return True

    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):

        async def poll() -> None:
            while not reap():
                await asyncio.sleep(0.02)

        loop.create_task(poll())
        return fut

    def on_ready() -> None:
        if reap():
            loop.remove_reader(pidfd)
            os.close(pidfd)

    loop.add_reader(pidfd, on_ready)
    return fut
