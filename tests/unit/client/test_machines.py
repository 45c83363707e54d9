"""The wait and follow machines: what a lost stream means, with no I/O."""

from __future__ import annotations

from dtask_client import ControllerUnavailable, WaitTimeout
from dtask_client._follow import Follow
from dtask_client._retry import Reconnect
from dtask_client._wait import Progress, Waiter
from dtask_common import events as ev
from dtask_common.models import OutputChunk, Task, TaskSpec, TaskState

LOST = ControllerUnavailable("lost the controller at h:1", "UNAVAILABLE")


def snap(*tasks: Task) -> ev.WatchEvent:
    return ev.WatchEvent(seq=0, at=0.0, body=ev.Snapshot(tasks=list(tasks), last=True))


def task(state: TaskState) -> Task:
    return Task(id="1", spec=TaskSpec(shell="true"), state=state)


def test_a_loss_before_the_snapshot_is_raised_after_it_is_waited_out() -> None:
    w = Waiter(["1"], None, 0.0, "h:1", 10.0)
    assert w.open(0.0) is None
    assert w.ended(LOST, 1.0) is LOST  # never connected: nothing to ride out
    w.open(1.0)
    assert w.apply(snap(task(TaskState.RUNNING))) == Progress([task(TaskState.RUNNING)], done=False)
    assert w.ended(LOST, 2.0) == Reconnect(LOST, None, 10.0)
    assert isinstance(w.ended(None, 2.0), Reconnect)  # the stream ended without the tasks finishing
    w.open(3.0)  # a fresh snapshot after the reconnect
    progress = w.apply(snap(task(TaskState.SUCCEEDED)))
    assert progress is not None and progress.done


def test_the_wait_timeout_bounds_the_stream_and_the_reconnect() -> None:
    w = Waiter(["1"], 5.0, 100.0, "h:1", 10.0, give_up_after=30.0)
    assert w.open(101.0) == 4.0
    w.apply(snap(task(TaskState.RUNNING)))
    assert w.ended(LOST, 102.0) == Reconnect(LOST, 105.0, 10.0)
    assert isinstance(w.reconnect_failed(LOST, 105.0), WaitTimeout)
    assert w.reconnect_failed(LOST, 103.0) is LOST
    deadline = ControllerUnavailable("did not answer", "DEADLINE_EXCEEDED")
    assert isinstance(w.ended(deadline, 104.99), WaitTimeout)


def test_a_window_limits_how_long_a_lost_controller_is_waited_for() -> None:
    w = Waiter(None, None, 0.0, "h:1", 10.0, give_up_after=10.0)
    w.apply(snap())
    assert w.ended(LOST, 50.0) == Reconnect(LOST, 60.0, 10.0)


def test_follow_passes_output_on_once_across_reconnects() -> None:
    f = Follow("7", 0, "h:1", 10.0)
    assert f.lost(LOST, 0.0) is LOST  # nothing followed yet
    assert f.piece(OutputChunk("7", 2, 0, b"abc")) == b"abc" and f.attempt == 2 and f.call().request.attempt == 2
    assert f.piece(OutputChunk("7", 2, 3, b"de")) == b"de"
    assert f.lost(LOST, 1.0) == Reconnect(LOST, None, 10.0)
    assert f.piece(OutputChunk("7", 2, 0, b"abcdef")) == b"f"  # the stream resumed from the start: only the new byte
    assert f.piece(OutputChunk("7", 2, 2, b"cd")) == b""
    assert not f.undispatched(task(TaskState.PENDING))  # started: a refusal is not about dispatch


def test_follow_of_a_task_not_started_and_a_stream_that_ended() -> None:
    f = Follow("7", 0, "h:1", 10.0, give_up_after=5.0)
    assert f.undispatched(task(TaskState.PENDING)) and not f.undispatched(task(TaskState.RUNNING))
    ended = f.lost(None, 1.0)
    assert isinstance(ended, Reconnect) and ended.deadline == 6.0 and "ended the output stream" in ended.lost.message
