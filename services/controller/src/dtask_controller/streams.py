"""Streams over the core's state: Watch (snapshot, then events) and output tails (with follow)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, TypeVar

from dtask_common import events as ev
from dtask_common.models import ExecutorUsage, OutputChunk, Task, WatchFilter

from dtask_controller import queries
from dtask_controller.errors import Conflict, NotFound, SlowWatcher
from dtask_controller.fanout import Watcher

if TYPE_CHECKING:
    from dtask_controller.core import ControllerCore

SNAPSHOT_TASKS = 500
CHUNK_BYTES = 64 * 1024
SNAPSHOT_DEADLINE_S = 60.0
PIECE_BYTES = 1024 * 1024
T = TypeVar("T")


async def watch(
    core: ControllerCore,
    exclude_usage: bool = False,
    exclude_progress: bool = False,
    history: int = 60,
    deadline_s: float = SNAPSHOT_DEADLINE_S,
    select: WatchFilter | None = None,
) -> AsyncIterator[ev.WatchEvent | list[ev.WatchEvent]]:
    """A consistent snapshot in pieces, then every change in order; a fresh snapshot after an overflow.

    select (None: every task and event but those excluded) chooses the tasks of the snapshot and of the
    task and progress events; with its max_batch above 1, events ready together come as lists, in order.
    """
    if select is None:
        select = WatchFilter(exclude_usage=exclude_usage, exclude_progress=exclude_progress)
    w = queries.subscribe(core, select)
    batch = select.batch
    try:
        resync = False
        while True:
            async for item in _snapshot(core, w, resync, history, deadline_s):
                yield item
            while True:
                while w.queue and not w.overflowed:
                    if batch > 1 and len(w.queue) > 1:
                        yield [w.queue.popleft() for _ in range(min(batch, len(w.queue)))]
                    else:
                        yield w.queue.popleft()
                if w.closed:
                    return
                if w.overflowed:
                    resync = True
                    break
                w.wakeup.clear()
                await w.wakeup.wait()
    finally:
        queries.unsubscribe(core, w)


async def _snapshot(
    core: ControllerCore, w: Watcher, resync: bool, history: int, deadline_s: float
) -> AsyncIterator[ev.WatchEvent]:
    # Everything up to the first read happens in one event-loop turn: no commit can slip between
    # the sequence number, the in-memory state and the store read transaction (nor any event between the
    # selection read and the watcher's view of it).
    w.queue.clear()
    w.overflowed = False
    seq = queries.event_seq(core)
    at = core.clock()
    f = w.filter
    pages = queries.snapshot_pages(core, SNAPSHOT_TASKS, f)
    if w.view is not None:
        w.view = set(pages.ids or ())
    expired = False

    def expire() -> None:  # a watcher that stops reading must not hold the read (and the WAL) forever
        nonlocal expired
        expired = True
        pages.close()

    def read() -> list[Task]:
        if expired:
            raise SlowWatcher(
                f"the snapshot was not read within {deadline_s:g}s; this watcher was dropped, "
                "watch again from a client that keeps up"
            )
        return next(pages, [])

    timer = asyncio.get_running_loop().call_later(deadline_s, expire)
    try:
        page = read()
        executors = [] if f.exclude_executors else queries.executors(core, include_gone=True)
        usage = [queries.usage(core, e.name, history) for e in executors]
        queue = queries.queue(core)
        # Pieces stay under PIECE_BYTES (roughly): executors and queue first, then usage, then tasks.
        head = ev.Snapshot(executors=executors, queue=queue, last=False)
        for chunk in _pieces(usage, _usage_size):
            head.usage = chunk
            yield ev.WatchEvent(seq, at, head, resync=resync)
            head, resync = ev.Snapshot(last=False), False
        while True:
            nxt = read() if len(page) == SNAPSHOT_TASKS else []
            chunks = list(_pieces([queries.overlay(core, t) for t in page], _task_size))
            for i, tasks in enumerate(chunks):
                head.tasks = tasks
                head.last = not nxt and i == len(chunks) - 1
                yield ev.WatchEvent(seq, at, head, resync=resync)
                head, resync = ev.Snapshot(last=False), False
            if not nxt:
                if not chunks:  # no task at all: the last piece is still to be sent
                    head.last = True
                    yield ev.WatchEvent(seq, at, head, resync=resync)
                return
            page = nxt
    finally:
        timer.cancel()
        pages.close()


def _pieces(items: list[T], size: Callable[[T], int]) -> Iterator[list[T]]:
    """Split items into lists of about PIECE_BYTES each (at least one item per list)."""
    piece: list[T] = []
    total = 0
    for item in items:
        n = size(item)
        if piece and total + n > PIECE_BYTES:
            yield piece
            piece, total = [], 0
        piece.append(item)
        total += n
    if piece:
        yield piece


def _task_size(t: Task) -> int:
    s = t.spec
    n = 300 + len(s.shell) + sum(len(a) for a in s.argv) + len(s.cwd) + len(t.error)
    n += sum(len(k) + len(v) for k, v in s.env.items()) + sum(len(k) + len(v) for k, v in s.labels.items())
    n += sum(len(x) for x in s.tags) + sum(len(x) for x in s.depends_on)
    n += len(repr(t.result)) if t.result else 0
    return n + sum(200 + len(a.error) + (len(repr(a.result)) if a.result else 0) for a in t.attempts)


def _usage_size(u: ExecutorUsage) -> int:
    samples = [*u.history, *([u.latest] if u.latest else [])]
    return 100 + sum(100 + 9 * len(x.per_cpu_percent) + 60 * len(x.gpus) for x in samples)


async def output(core: ControllerCore, task_id: str, attempt: int, follow: bool) -> AsyncIterator[OutputChunk]:
    """The stored tail of an attempt; with follow, new output until the attempt ends."""
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
    if number > len(task.attempts) or number < 0:
        raise NotFound(f"task {task_id} has no attempt {attempt}; it has {len(task.attempts)}")
    tail = queries.output_tail(core, task_id, number)
    if tail is None:
        stored = queries.stored_output(core, task_id, number)
        if stored:
            start, data = stored
            for i in range(0, len(data), CHUNK_BYTES):
                yield OutputChunk(task_id, number, start + i, data[i : i + CHUNK_BYTES])
        return
    offset = tail.start
    while True:
        changed = tail.changed
        offset, data = tail.read(offset)
        for i in range(0, len(data), CHUNK_BYTES):
            yield OutputChunk(task_id, number, offset + i, data[i : i + CHUNK_BYTES])
        offset += len(data)
        if tail.done or not follow:
            return
        if tail.end == offset:
            await changed.wait()
