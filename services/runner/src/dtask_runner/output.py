"""Streaming an attempt's log file to the controller in coalesced chunks; throttling progress."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

from dtask_common.models import OutputChunk

log = logging.getLogger(__name__)

MAX_CHUNK = 1024 * 1024  # one message per MiB of a flood (a quarter of the send queue's batch)
FLUSH_AFTER_S = 0.1


class OutputPump:
    """Sends new bytes of a log file as OutputChunks (≤ MAX_CHUNK, at most FLUSH_AFTER_S late).

    The log file is the buffer: a slow or absent controller only delays the pump, never the task.
    Its task starts with the first output: an attempt that prints nothing costs no task.
    """

    def __init__(
        self,
        path: Path,
        task_id: str,
        attempt: int,
        send: Callable[[OutputChunk], Awaitable[bool | None]],
        *,
        max_chunk: int = MAX_CHUNK,
        flush_after_s: float = FLUSH_AFTER_S,
        keep: Callable[[], int] = lambda: 0,
    ):
        self.path = path
        self.task_id = task_id
        self.attempt = attempt
        self.sent = 0
        self.written = 0
        self._send = send
        self._max_chunk = max_chunk
        self._flush_after_s = flush_after_s
        self._keep = keep  # the controller's output tail: bytes of a flood before written - keep are not sent
        self.skipped = 0  # bytes not sent for that
        self._more = asyncio.Event()
        self._final = False
        self._resume: int | None = None
        self._task: asyncio.Task[None] | None = None

    def _start(self) -> None:
        if self._task is None and self.written > 0:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"output {self.task_id}/{self.attempt}"
            )

    def notify(self, written: int) -> None:
        """The log file now holds `written` bytes."""
        if written > self.written:
            self.written = written
            self._more.set()
            self._start()

    async def finish(self, written: int) -> None:
        """The log is complete at `written` bytes; return once all of it was sent."""
        self.notify(written)
        self._final = True
        self._more.set()
        if self._task is not None:
            await asyncio.shield(self._task)

    def resume(self, offset: int) -> None:
        """A new session: the controller holds the output before offset; send on from there."""
        self._resume = offset
        self._more.set()
        self._start()

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _run(self) -> None:
        fd = -1
        flood_end = 0
        try:
            while True:
                if self._resume is not None:
                    self.sent, self._resume = max(0, min(self._resume, self.written)), None
                if self.sent >= self.written:
                    if self._final:
                        return
                    self._more.clear()
                    await self._more.wait()
                    continue
                if self.written - self.sent < self._max_chunk and not self._final:
                    # Coalesce: give the task a moment to write more before sending.
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self._full_or_final(), self._flush_after_s)
                if self._skip_flood():
                    flood_end = self.written  # the tail it skipped to: sent whole, then a pause
                size = min(self._max_chunk, self.written - self.sent)
                try:
                    if fd < 0:
                        fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
                    data = os.pread(fd, size, self.sent)
                except OSError as exc:  # the log was deleted or cannot be read: no more output to send
                    log.warning(
                        "attempt %s/%d: cannot read its log %s (%s); no more of its output is sent",
                        self.task_id,
                        self.attempt,
                        self.path,
                        exc.strerror or exc,
                    )
                    return
                if not data:
                    # The file is shorter than reported (truncated by hand?): stop here.
                    return
                if await self._send(OutputChunk(self.task_id, self.attempt, self.sent, data)) is False:
                    continue  # not sent (the session broke): again, from where the next session resumes
                self.sent += len(data)
                if flood_end and self.sent >= flood_end and not self._final:
                    # Under a flood, one tail's worth per flush interval: what comes between falls out of the
                    # controller's tail before anyone sees it (a reader of the whole output gets it from the log).
                    flood_end = 0
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self._final_set(), self._flush_after_s)
        finally:
            if fd >= 0:
                os.close(fd)

    def _skip_flood(self) -> bool:
        """Under a flood (further behind than the controller's tail and a chunk), send on from one tail before
        the end: whether it skipped."""
        keep = self._keep()
        behind = self.written - self.sent
        if keep <= 0 or behind <= keep + self._max_chunk:
            return False
        self.skipped += behind - keep
        self.sent = self.written - keep
        return True

    async def _final_set(self) -> None:
        while not self._final:
            self._more.clear()
            await self._more.wait()

    async def _full_or_final(self) -> None:
        while self.written - self.sent < self._max_chunk and not self._final:
            self._more.clear()
            await self._more.wait()


class Throttle:
    """At most one item per interval; the latest item wins (pure: the caller passes the time)."""

    def __init__(self, interval_s: float):
        self.interval_s = interval_s
        self.last_sent = -math.inf
        self.pending: object | None = None

    def offer(self, now: float, item: object) -> float:
        """Record item; return 0 to send it now, else the delay after which flush() is due."""
        self.pending = item
        wait = self.last_sent + self.interval_s - now
        return 0.0 if wait <= 0 else wait

    def take(self, now: float) -> object | None:
        """The pending item (and mark it sent), or None."""
        item, self.pending = self.pending, None
        if item is not None:
            self.last_sent = now
        return item
