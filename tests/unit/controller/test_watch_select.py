"""Filtered watches without network: the store's selection reads, the watcher's view, batches and resync."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

from dtask_common import events as ev
from dtask_common.models import Progress, QueueStatus, Task, TaskSpec, TaskState, WatchFilter
from dtask_controller import commands, streams
from dtask_controller.fanout import Fanout
from dtask_controller.store import SqliteStore, snapshot_reads

from tests.unit.controller.test_core import Clock, core


class CountingDb:
    """A connection that counts the rows its queries return."""

    def __init__(self, db: sqlite3.Connection):
        self.db, self.rows = db, 0

    def execute(self, q: str, args: Any = ()) -> list[Any]:
        out = self.db.execute(q, args).fetchall()
        self.rows += len(out)
        return out


def test_a_selection_reads_the_rows_it_selects_not_the_store(tmp_path: Path) -> None:
    st = SqliteStore(tmp_path / "c.db")
    with st.transaction():
        ids = st.add_tasks([TaskSpec(name=f"t{i}", shell="true") for i in range(5000)], [[]] * 5000, now=1.0)
        for tid in ids[:4990]:
            st.set_task(tid, TaskState.SUCCEEDED)
    counting = CountingDb(st._db)
    assert snapshot_reads.selected_ids(counting, WatchFilter(task_ids=(ids[7], "x", "99999"))) == [int(ids[7])]  # type: ignore[arg-type]
    assert counting.rows == 1
    counting.rows = 0
    got = snapshot_reads.selected_ids(counting, WatchFilter(finished_limit=3))  # type: ignore[arg-type]
    assert got == [int(i) for i in ids[4987:]] and counting.rows == 13  # 10 unfinished, 3 of each finished state
    snap = st.read_snapshot(4, WatchFilter(task_ids=(ids[1], ids[3000], ids[4999])))
    assert snap.ids == [ids[1], ids[3000], ids[4999]]
    assert [[t.id for t in p] for p in snap] == [[ids[1], ids[3000], ids[4999]]]
    st.close()


def test_a_watcher_with_a_state_filter_sees_tasks_come_and_go() -> None:
    hub = Fanout(lambda: 1.0)
    w = hub.subscribe(watch=WatchFilter(states=frozenset({TaskState.RUNNING}), exclude_progress=False))
    assert w.view == set()
    spec = TaskSpec(name="a", shell="true")
    hub.publish(ev.TaskEvent(ev.TaskEventKind.ADDED, Task("1", spec)))  # pending: not in the filter
    hub.publish(ev.ProgressEvent("1", 1, Progress(step=1)))  # not seen as running: not sent
    hub.publish(ev.TaskEvent(ev.TaskEventKind.DISPATCHED, Task("1", spec, state=TaskState.RUNNING)))
    hub.publish(ev.ProgressEvent("1", 1, Progress(step=2)))
    hub.publish(ev.TaskEvent(ev.TaskEventKind.FINISHED, Task("1", spec, state=TaskState.SUCCEEDED)))  # leaves
    hub.publish(ev.TaskEvent(ev.TaskEventKind.UPDATED, Task("1", spec, state=TaskState.SUCCEEDED)))  # gone
    hub.publish(ev.QueueEvent(QueueStatus()))
    kinds = [type(e.body).__name__ for e in w.queue]
    assert kinds == ["TaskEvent", "ProgressEvent", "TaskEvent", "QueueEvent"] and w.view == set()


def test_a_watch_excluding_unfinished_events_gets_the_ends_and_the_retries_alone() -> None:
    """What a plain wait asks for: of a task's events, its addition, those after which it is finished, and a
    retry that makes a finished task pending again; not its dispatch or a requeue (nor another task's events)."""
    hub = Fanout(lambda: 1.0)
    w = hub.subscribe(watch=WatchFilter(task_ids=("1",), exclude_progress=True, exclude_unfinished=True))
    every = hub.subscribe(watch=WatchFilter(task_ids=("1",), exclude_progress=True))
    spec = TaskSpec(name="a", shell="true")
    K = ev.TaskEventKind
    for kind, state in [
        (K.ADDED, TaskState.PENDING),
        (K.DISPATCHED, TaskState.RUNNING),
        (K.UPDATED, TaskState.PENDING),  # its attempt failed and it is queued again
        (K.DISPATCHED, TaskState.RUNNING),
        (K.FINISHED, TaskState.FAILED),
        (K.RETRIED, TaskState.PENDING),  # an operator's RetryTask
        (K.DISPATCHED, TaskState.RUNNING),
        (K.CANCELLED, TaskState.CANCELLED),
        (K.UPDATED, TaskState.LOST),
    ]:
        hub.publish(ev.TaskEvent(kind, Task("1", spec, state=state)))
    hub.publish(ev.TaskEvent(K.FINISHED, Task("2", spec, state=TaskState.SUCCEEDED)))
    seen = [(e.body.kind, e.body.task.state) for e in w.queue if isinstance(e.body, ev.TaskEvent)]
    assert seen == [
        (K.ADDED, TaskState.PENDING),
        (K.FINISHED, TaskState.FAILED),
        (K.RETRIED, TaskState.PENDING),
        (K.CANCELLED, TaskState.CANCELLED),
        (K.UPDATED, TaskState.LOST),
    ]
    assert len(every.queue) == 9


def test_filtered_watch_batches_and_resyncs_with_a_fresh_view(tmp_path: Path) -> None:
    async def go() -> None:
        e = core(tmp_path, Clock(), watch_queue=5)
        ids = commands.submit(e, [TaskSpec(name=f"t{i}", shell="true") for i in range(3)])
        commands.cancel(e, ids[0])
        select = WatchFilter(states=frozenset({TaskState.PENDING}), max_batch=4)
        stream = streams.watch(e, select=select)
        first = await anext(stream)
        assert isinstance(first, ev.WatchEvent) and isinstance(first.body, ev.Snapshot)
        assert [t.id for t in first.body.tasks] == ids[1:] and first.body.last
        more = commands.submit(e, [TaskSpec(name=f"u{i}", shell="true") for i in range(3)])
        batch = await anext(stream)
        assert isinstance(batch, list) and [b.body.task.id for b in batch[:3]] == more  # type: ignore[union-attr]
        commands.submit(e, [TaskSpec(name=f"v{i}", shell="true") for i in range(10)])  # overflows the watcher
        again = await anext(stream)
        assert isinstance(again, ev.WatchEvent) and again.resync and isinstance(again.body, ev.Snapshot)
        assert len(again.body.tasks) == 15
        commands.cancel(e, ids[1])  # was in the fresh snapshot: its leaving is sent
        left = await anext(stream)
        items = left if isinstance(left, list) else [left]
        assert any(isinstance(i.body, ev.TaskEvent) and i.body.task.id == ids[1] for i in items)
        await stream.aclose()
        e.store.close()

    asyncio.run(go())


def test_snapshots_reuse_a_kept_read_connection_with_its_transaction_ended(tmp_path: Path) -> None:
    st = SqliteStore(tmp_path / "c.db")
    st.add_tasks([TaskSpec(name=f"t{i}", shell="true") for i in range(3)], [[]] * 3, now=1.0)
    first = st.read_snapshot(2, WatchFilter(task_ids=("1",)))
    assert [t.id for p in first for t in p] == ["1"]
    kept = list(st._readers._idle)
    assert len(kept) == 1 and not kept[0].in_transaction
    again = st.read_snapshot(2)
    next(again)
    assert not st._readers._idle  # taken again, not a new connection
    again.close()
    assert st._readers._idle == kept
    st.add_tasks([TaskSpec(name="late", shell="true")], [[]], now=2.0)  # the kept reader sees new commits
    assert [t.id for p in st.read_snapshot(10) for t in p] == ["1", "2", "3", "4"]
    assert int(st._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]) == 0  # it holds no read back
    st.close()
    assert not st._readers._idle
