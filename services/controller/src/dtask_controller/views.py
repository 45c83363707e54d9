"""Streams over the engine's state: Watch (snapshot, then events) and output tails (with follow)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator

from dtask_common import events as ev
from dtask_common.models import OutputChunk

from dtask_controller.domain import Conflict, NotFound, SlowWatcher
from dtask_controller.engine import Engine
from dtask_controller.hub import Watcher

SNAPSHOT_TASKS = 500
CHUNK_BYTES = 64 * 1024
SNAPSHOT_DEADLINE_S = 60.0


async def watch(engine: Engine, exclude_usage: bool = False, exclude_progress: bool = False,
                history: int = 60, deadline_s: float = SNAPSHOT_DEADLINE_S) -> AsyncIterator[ev.WatchEvent]:
    """A consistent snapshot in pieces, then every change in order; a fresh snapshot after an overflow."""
    w = engine.hub.subscribe(exclude_usage, exclude_progress)
    try:
        resync = False
        while True:
            async for item in _snapshot(engine, w, resync, history, deadline_s):
                yield item
            while True:
                while w.queue and not w.overflowed:
                    yield w.queue.popleft()
                if w.closed:
                    return
                if w.overflowed:
                    resync = True
                    break
                w.wakeup.clear()
                await w.wakeup.wait()
    finally:
        engine.hub.unsubscribe(w)


async def _snapshot(engine: Engine, w: Watcher, resync: bool, history: int,
                    deadline_s: float) -> AsyncIterator[ev.WatchEvent]:
    # Everything up to the first read happens in one event-loop turn: no commit can slip between
    # the sequence number, the in-memory state and the store read transaction.
    w.queue.clear()
    w.overflowed = False
    seq = engine.hub.seq
    at = engine.clock()
    db = engine.store.reader()
    # A watcher that stops reading must not hold the read transaction (and the WAL) forever.
    timer = asyncio.get_running_loop().call_later(deadline_s, db.close)
    try:
        db.execute("BEGIN")
        page = engine.store.iter_all(db, 0, SNAPSHOT_TASKS)
        executors = engine.executors(include_gone=True)
        usage = [engine.registry.usage(e.name, history) for e in executors]
        queue = engine.queue()
        first = True
        while True:
            nxt = engine.store.iter_all(db, int(page[-1].id), SNAPSHOT_TASKS) if len(page) == SNAPSHOT_TASKS else []
            body = ev.Snapshot(tasks=[engine.overlay(t) for t in page], last=not nxt)
            if first:
                body.executors, body.usage, body.queue = executors, usage, queue
            yield ev.WatchEvent(seq, at, body, resync=resync and first)
            first = False
            if not nxt:
                return
            page = nxt
    except sqlite3.ProgrammingError:
        raise SlowWatcher(f"the snapshot was not read within {deadline_s:g}s; this watcher was dropped, "
                          "watch again from a client that keeps up") from None
    finally:
        timer.cancel()
        db.close()


async def output(engine: Engine, task_id: str, attempt: int, follow: bool) -> AsyncIterator[OutputChunk]:
    """The stored tail of an attempt; with follow, new output until the attempt ends."""
    task = engine.task(task_id)
    while follow and not task.attempts and not task.state.finished:
        await engine.task_changed(task_id).wait()  # wait for the first dispatch
        task = engine.task(task_id)
    if not task.attempts:
        raise Conflict(f"task {task_id} has not run yet ({task.state.value}); ask again once it is dispatched, "
                       "or follow it (follow waits for the dispatch)")
    number = attempt or task.attempts[-1].number
    if number > len(task.attempts) or number < 0:
        raise NotFound(f"task {task_id} has no attempt {attempt}; it has {len(task.attempts)}")
    tail = engine.tails.get(task_id, number)
    if tail is None:
        stored = engine.store.output(task_id, number)
        if stored:
            start, data = stored
            for i in range(0, len(data), CHUNK_BYTES):
                yield OutputChunk(task_id, number, start + i, data[i:i + CHUNK_BYTES])
        return
    offset = tail.start
    while True:
        changed = tail.changed
        offset, data = tail.read(offset)
        for i in range(0, len(data), CHUNK_BYTES):
            yield OutputChunk(task_id, number, offset + i, data[i:i + CHUNK_BYTES])
        offset += len(data)
        if tail.done or not follow:
            return
        if tail.end == offset:
            await changed.wait()
