"""The wait and follow machines: what a lost stream means, with no I/O."""

from __future__ import annotations

import pytest
from dtask_client import ControllerUnavailable, WaitCounts, WaitTimeout
from dtask_client._follow import Follow
from dtask_client._retry import Reconnect
from dtask_client._wait import Progress, Waiter, WaitState
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


def test_a_long_wait_lists_its_tasks_once_not_after_every_message(monkeypatch: pytest.MonkeyPatch) -> None:
    """Listing the watched tasks costs O(tasks): a wait for 2,000 tasks whose events come one per message lists
    them once, when they are all done (it listed them after every event: O(tasks x events)); with an on_change
    to call, after each message."""
    listed = 0
    watched = WaitState.watched

    def counting(self: WaitState) -> list[Task]:
        nonlocal listed
        listed += 1
        return watched(self)

    monkeypatch.setattr(WaitState, "watched", counting)
    ids = [str(i) for i in range(2000)]
    for every, lists in ((False, 1), (True, 2001)):
        listed = 0
        w = Waiter(ids, None, 0.0, "h:1", 10.0)
        first = w.apply_all(
            [snap(*(Task(id=i, spec=TaskSpec(shell="true"), state=TaskState.RUNNING) for i in ids))], every=every
        )
        assert first is not None and not first.done and len(first.tasks) == (2000 if every else 0)
        for n, i in enumerate(ids):
            done = Task(id=i, spec=TaskSpec(shell="true"), state=TaskState.SUCCEEDED)
            progress = w.apply_all(
                [ev.WatchEvent(seq=n + 1, at=0.0, body=ev.TaskEvent(ev.TaskEventKind.FINISHED, done))], every=every
            )
            assert progress is not None and progress.done == (i == ids[-1])
        assert progress.tasks[-1].id == "1999" and all(t.state is TaskState.SUCCEEDED for t in progress.tasks)
        assert listed == lists, every


def test_counts_follow_every_change_of_state_without_listing_the_tasks(monkeypatch: pytest.MonkeyPatch) -> None:
    """What `dtask wait` shows on a terminal after each message: kept as events come (a retried task leaves
    succeeded again, a task shown twice counts once), never by listing the tasks."""
    monkeypatch.setattr(WaitState, "watched", lambda self: pytest.fail("listed"))
    ids = [str(i) for i in range(2000)]
    w = Waiter(ids, None, 0.0, "h:1", 10.0)
    w.apply_all([snap(*(Task(id=i, spec=TaskSpec(shell="true"), state=TaskState.PENDING) for i in ids))])
    assert w.counts() == WaitCounts({TaskState.PENDING: 2000}, 2000)
    for n, (i, state) in enumerate(
        [
            ("0", TaskState.RUNNING),
            ("0", TaskState.SUCCEEDED),
            ("1", TaskState.FAILED),
            ("0", TaskState.PENDING),
            ("0", TaskState.RUNNING),
        ]
    ):
        t = Task(id=i, spec=TaskSpec(shell="true"), state=state)
        w.apply_all([ev.WatchEvent(seq=n + 1, at=0.0, body=ev.TaskEvent(ev.TaskEventKind.UPDATED, t))])
    got = w.counts()
    assert got == WaitCounts({TaskState.PENDING: 1998, TaskState.RUNNING: 1, TaskState.FAILED: 1}, 2000)
    assert got.finished == 1


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


def test_a_follow_over_reads_the_rest_only_when_the_output_is_larger_than_what_it_passed_on() -> None:
    """A stopping controller ends follow streams as if the attempt had ended: once the attempt is over, the
    size a one-byte probe gives decides whether a whole read is needed for bytes that came meanwhile."""
    f = Follow("7", 0, "h:1", 10.0)
    assert f.piece(OutputChunk("7", 2, 0, b"first\n")) == b"first\n"
    probe = f.probe()
    assert probe.request.tail_bytes == 1 and probe.request.attempt == 2 and not probe.request.follow
    assert f.rest([OutputChunk("7", 2, 5, b"\n", total_bytes=6)]) is None
    assert f.rest([]) is None
    rest = f.rest([OutputChunk("7", 2, 18, b"\n", total_bytes=19)])
    assert rest is not None and rest.request.tail_bytes == 0 and rest.request.attempt == 2
    assert not rest.request.follow
    assert f.piece(OutputChunk("7", 2, 0, b"first\nsecond\nthird\n")) == b"second\nthird\n"
