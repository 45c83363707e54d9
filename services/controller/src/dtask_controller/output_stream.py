"""GetTaskOutput's stream: an attempt's whole output (the controller's copy, and the runner's log for what it no
longer holds), or only its tail; with follow, new output until the attempt ends."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dtask_common.models import OutputChunk

from dtask_controller import output_reads, queries
from dtask_controller.errors import Conflict, NotFound
from dtask_controller.output import Tail
from dtask_controller.output_reads import RunnerReadError

if TYPE_CHECKING:
    from dtask_controller.core import ControllerCore

CHUNK_BYTES = (
    1024 * 1024
)  # of output per OutputChunk: a whole read of the runner's log (output_reads.READ_BYTES), not cut


async def output(
    core: ControllerCore, task_id: str, attempt: int, follow: bool, tail_bytes: int = 0
) -> AsyncIterator[OutputChunk]:
    """The attempt's output (0: the latest): all of it (tail_bytes 0) or its last tail_bytes (at most what the
    controller holds); with follow, then new output until the attempt ends."""
    if tail_bytes < 0:
        raise ValueError(f"tail_bytes is {tail_bytes}; give 0 for the whole output or a positive number of bytes")
    task = queries.task(core, task_id)
    while follow and not task.attempts and not task.state.finished:
        await queries.task_changed(core, task_id).wait()  # wait for the first dispatch
        task = queries.task(core, task_id)
    if not task.attempts:
        raise Conflict(
            f"task {task_id} has not run yet ({task.state.value}); ask again once it is dispatched, "
            "or follow it (follow waits for the dispatch)"
        )
    number = attempt or task.attempts[-1].number
    ran = [a for a in task.attempts if a.number == number]
    if not ran or number < 0:
        raise NotFound(f"task {task_id} has no attempt {attempt}; it has {len(task.attempts)}")
    held = _held(core, task_id, number)
    if held is None:
        return
    stream = _Stream(core, task_id, number, ran[0].executor, held)
    if tail_bytes > 0:
        stream.offset = max(held.start, held.end - tail_bytes)
        stream.whole = False
    async for chunk in stream.run(follow):
        yield chunk


def _held(core: ControllerCore, task_id: str, number: int) -> Tail | None:
    """What the controller holds of the attempt's output: its live tail, or the stored one (ended)."""
    tail = queries.output_tail(core, task_id, number)
    if tail is not None:
        return tail
    stored = queries.stored_output(core, task_id, number)
    if not stored:
        return None
    start, data = stored
    return Tail(max(1, len(data)), start, bytearray(data), done=True)


@dataclass
class _Stream:
    """One GetTaskOutput stream: where it is, and what it has to say about bytes it cannot give."""

    core: ControllerCore
    task_id: str
    number: int
    executor: str
    held: Tail
    offset: int = 0
    whole: bool = True
    notice: str = ""

    async def run(self, follow: bool) -> AsyncIterator[OutputChunk]:
        held = self.held
        while True:
            changed = held.changed
            if self.whole and self.offset < held.start:  # the controller no longer holds these: the runner's log
                async for chunk in self._from_runner():
                    yield chunk
                continue
            offset, data = held.read(self.offset)
            for chunk in self._chunks(offset, data):
                yield chunk
            if self.notice:  # nothing held after the bytes that are gone: the notice alone
                yield OutputChunk(self.task_id, self.number, offset, b"", notice=self.notice, total_bytes=held.end)
                self.notice = ""
            self.offset = offset + len(data)
            if held.done or not follow:
                return
            if held.end == self.offset:
                await changed.wait()

    async def _from_runner(self) -> AsyncIterator[OutputChunk]:
        """From the runner's log up to where the controller's copy starts; when it cannot be read, say which
        bytes are gone and go on from the controller's copy."""
        held = self.held
        session, why = queries.runner_session(self.core, self.executor)
        try:
            if session is None:
                raise RunnerReadError(why)
            reads = output_reads.read_log(session, self.task_id, self.number, self.offset, lambda: held.start)
            async with contextlib.aclosing(reads):
                async for r in reads:
                    for chunk in self._chunks(r.offset, r.data):
                        yield chunk
                    self.offset = r.offset + len(r.data)
            if self.offset < held.start:
                raise RunnerReadError(f"runner {self.executor}'s log of it ends at byte {self.offset}")
        except RunnerReadError as exc:
            if self.offset < held.start:
                self.notice = _gone(self.offset, held.start, str(exc), held.end - held.start)
                self.offset = held.start

    def _chunks(self, offset: int, data: bytes) -> Iterator[OutputChunk]:
        total = max(self.held.end, offset + len(data))
        for i in range(0, len(data), CHUNK_BYTES):
            yield OutputChunk(
                self.task_id,
                self.number,
                offset + i,
                data[i : i + CHUNK_BYTES],
                notice=self.notice,
                total_bytes=total,
            )
            self.notice = ""


def _gone(start: int, end: int, why: str, kept: int) -> str:
    what = f"the first {end} bytes" if start == 0 else f"bytes {start} to {end - 1}"
    return f"{what} of this attempt's output are gone: {why}; showing the last {_size(kept)} the controller kept"


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n // scale} {unit}" if n % scale == 0 else f"{n / scale:.1f} {unit}"
    return f"{n} bytes"
