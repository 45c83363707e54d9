"""The Watch filter as a model: what it selects, its limits, and its conversion to and from the request."""

from __future__ import annotations

import pytest
from dtask.v1 import common_pb2 as cpb
from dtask.v1 import controller_pb2 as pb
from dtask_common import convert
from dtask_common.models import MAX_WATCH_IDS, Attempt, Task, TaskSpec, TaskState, WatchFilter


def task(tid: str, state: TaskState = TaskState.PENDING, tags: tuple[str, ...] = (), on: str = "") -> Task:
    attempts = [Attempt(tid, 1, executor=on)] if on else []
    return Task(tid, TaskSpec(name=tid, shell="true", tags=tags), state=state, attempts=attempts)


def test_the_default_selects_every_task_and_sends_one_event_per_message() -> None:
    f = WatchFilter()
    assert not f.selects and not f.by_attributes and f.batch == 1
    assert f.matches(task("1")) and f.wants_id("7")
    assert convert.watch_filter_from_pb(pb.WatchRequest()) == f


def test_matches_by_id_state_tag_and_latest_executor() -> None:
    f = WatchFilter(task_ids=("1", "2", "1"), states=frozenset({TaskState.RUNNING}), tag="gpu", executor="r1")
    assert f.task_ids == ("1", "2") and f.selects and f.by_attributes
    assert f.matches(task("1", TaskState.RUNNING, ("gpu",), "r1"))
    assert not f.matches(task("3", TaskState.RUNNING, ("gpu",), "r1"))  # not listed
    assert not f.matches(task("1", TaskState.PENDING, ("gpu",), "r1"))
    assert not f.matches(task("1", TaskState.RUNNING, ("cpu",), "r1"))
    assert not f.matches(task("1", TaskState.RUNNING, ("gpu",), "r2"))
    requeued = task("2", TaskState.PENDING, ("gpu",), "r1")  # its latest attempt ran on r1, as ListTasks says
    assert WatchFilter(executor="r1").matches(requeued) and requeued.executor == ""
    assert WatchFilter(states=frozenset({TaskState.FAILED})).finished_states == {TaskState.FAILED}
    assert WatchFilter().unfinished_states == {TaskState.PENDING, TaskState.RUNNING}


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"finished_limit": -1}, "finished_limit must be >= 0"),
        ({"max_batch": -1}, "max_batch must be between 0 and 1000"),
        ({"max_batch": 1001}, "max_batch must be between 0 and 1000"),
        ({"task_ids": tuple(str(i) for i in range(MAX_WATCH_IDS + 1))}, "at most 10000 are accepted"),
    ],
)
def test_values_out_of_range_are_refused_saying_what_to_send(fields: dict[str, object], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        WatchFilter(**fields)  # type: ignore[arg-type]


def test_conversion_round_trips_and_refuses_unknown_states() -> None:
    f = WatchFilter(
        task_ids=("4", "2"),
        states=frozenset({TaskState.PENDING, TaskState.LOST}),
        tag="t",
        executor="r1",
        finished_limit=50,
        exclude_usage=True,
        exclude_progress=True,
        exclude_executors=True,
        max_batch=64,
    )
    assert (
        convert.watch_filter_from_pb(pb.WatchRequest.FromString(convert.watch_filter_to_pb(f).SerializeToString())) == f
    )
    for bad in (cpb.TASK_STATE_UNSPECIFIED, 42):
        with pytest.raises(ValueError, match=f"unknown task state {bad} in states; use PENDING, RUNNING"):
            convert.watch_filter_from_pb(pb.WatchRequest(states=[cpb.TASK_STATE_PENDING, bad]))
