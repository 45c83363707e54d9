"""What the TUI shows of a running attempt's progress never moves backwards: a report older than the one held
(by when the runner saw it) does not replace it, whether it comes as a progress event or on a task event."""

from __future__ import annotations

from dataclasses import replace

from dtask_common.events import ProgressEvent, WatchEvent
from dtask_common.models import Progress, TaskState
from dtask_tui.cluster import Cluster

from tests.unit.tui.fakes import NOW, task, task_event


def at(step: int, seen: float) -> Progress:
    return Progress("train", step, 100, float(step), updated_at=seen)


def test_an_older_progress_event_does_not_replace_a_newer_one() -> None:
    c = Cluster()
    c.put_task(task(1, TaskState.RUNNING))
    c.apply(WatchEvent(1, NOW, ProgressEvent("t1", 1, at(96, NOW + 2))))
    c.apply(WatchEvent(2, NOW, ProgressEvent("t1", 1, at(92, NOW + 1))))
    assert c.tasks["t1"].progress == at(96, NOW + 2)
    c.apply(WatchEvent(3, NOW, ProgressEvent("t1", 1, at(3, NOW + 3))))  # a bar that restarted, later
    assert c.tasks["t1"].progress == at(3, NOW + 3)


def test_a_task_event_with_older_progress_keeps_the_newer() -> None:
    c = Cluster()
    c.put_task(task(1, TaskState.RUNNING))
    c.apply(WatchEvent(1, NOW, ProgressEvent("t1", 1, at(96, NOW + 2))))
    c.apply(task_event(2, replace(task(1, TaskState.RUNNING), progress=at(92, NOW + 1))))
    assert c.tasks["t1"].progress == at(96, NOW + 2)
