"""The client's wait bookkeeping: awaited tasks from a Watch stream, with no I/O."""

from __future__ import annotations

import pytest
from dtask_client import NotFound
from dtask_client._wait import WaitState
from dtask_common import events as ev
from dtask_common.models import Task, TaskSpec, TaskState


def task(i: str, state: TaskState) -> Task:
    return Task(id=i, spec=TaskSpec(shell="true"), state=state)


def snap(*tasks: Task, last: bool = True) -> ev.WatchEvent:
    return ev.WatchEvent(seq=0, at=0.0, body=ev.Snapshot(tasks=list(tasks), last=last))


def change(t: Task) -> ev.WatchEvent:
    return ev.WatchEvent(seq=1, at=0.0, body=ev.TaskEvent(ev.TaskEventKind.UPDATED, t))


def test_waits_for_every_awaited_task() -> None:
    w = WaitState(["1", "2"])
    w.apply(snap(task("1", TaskState.SUCCEEDED), task("2", TaskState.RUNNING), task("3", TaskState.PENDING)))
    assert w.ready and not w.done()
    w.apply(change(task("3", TaskState.FAILED)))
    assert not w.done() and "3" not in w.tasks  # not awaited: not kept
    w.apply(change(task("2", TaskState.FAILED)))
    assert w.done() and [t.state for t in w.watched()] == [TaskState.SUCCEEDED, TaskState.FAILED]


def test_all_tasks_and_a_retry_reopens() -> None:
    w = WaitState(None)
    w.apply(snap(task("1", TaskState.SUCCEEDED), last=False))
    assert not w.done()  # the snapshot is not complete yet
    w.apply(snap(task("2", TaskState.CANCELLED)))
    assert w.done()
    w.apply(change(task("2", TaskState.PENDING)))
    assert not w.done()
    w.apply(change(task("2", TaskState.SUCCEEDED)))
    assert w.done() and [t.id for t in w.watched()] == ["1", "2"]


def test_unknown_id_is_not_found_once_the_snapshot_is_complete() -> None:
    w = WaitState(["1", "99"])
    w.apply(snap(task("1", TaskState.RUNNING), last=False))
    w.check()  # incomplete snapshot: 99 may still come
    w.apply(snap())
    with pytest.raises(NotFound, match="no task with id '99'"):
        w.check()


def test_an_empty_queue_is_done() -> None:
    w = WaitState(None)
    w.apply(snap())
    assert w.done() and w.watched() == []
