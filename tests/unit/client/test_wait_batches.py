"""wait() and watch() over a scripted Watch stream: the request they send and batches unpacked in order."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from dtask.v1 import common_pb2 as cpb
from dtask.v1 import controller_pb2 as pb
from dtask_client import Controller, WaitCounts
from dtask_client import _calls as c
from dtask_common.config import Config
from dtask_common.events import TaskEvent
from dtask_common.models import MAX_WATCH_IDS, TaskState

PENDING, RUNNING, DONE = cpb.TASK_STATE_PENDING, cpb.TASK_STATE_RUNNING, cpb.TASK_STATE_SUCCEEDED


class Stream:
    """A server stream of scripted messages, as a grpc call (iterable, cancellable)."""

    def __init__(self, messages: list[pb.WatchEvent]):
        self._it = iter(messages)
        self._cancelled = False

    def __iter__(self) -> Iterator[pb.WatchEvent]:
        return self._it

    def cancel(self) -> None:
        self._cancelled = True

    def cancelled(self) -> bool:
        return self._cancelled


@dataclass
class WatchChannel:
    """Answers Watch with the scripted messages; keeps the requests."""

    messages: list[pb.WatchEvent]
    requests: list[pb.WatchRequest] = field(default_factory=list)

    def unary_stream(self, path: str, **_: object) -> Callable[..., Any]:
        def call(request: pb.WatchRequest, timeout: float | None = None) -> Stream:
            self.requests.append(request)
            return Stream(self.messages)

        return call

    def close(self) -> None:
        pass


def task(tid: str, state: int) -> cpb.Task:
    return cpb.Task(id=tid, state=state, spec=cpb.TaskSpec(name=tid, shell="true"))


def snapshot(seq: int, *tasks: cpb.Task) -> pb.WatchEvent:
    return pb.WatchEvent(seq=seq, snapshot=pb.Snapshot(tasks=list(tasks), last=True))


def changed(seq: int, t: cpb.Task, kind: int = pb.TaskEvent.KIND_FINISHED) -> pb.WatchEvent:
    return pb.WatchEvent(seq=seq, task=pb.TaskEvent(kind=kind, task=t))


def batch(*events: pb.WatchEvent) -> pb.WatchEvent:
    return pb.WatchEvent(seq=events[-1].seq, batch=pb.EventBatch(events=list(events)))


def client(ch: WatchChannel) -> Controller:
    return Controller("ctrl.test:50051", channel=ch, config=Config())  # type: ignore[arg-type]


def test_wait_asks_for_its_tasks_alone_and_unpacks_batches_in_order() -> None:
    ch = WatchChannel(
        [
            snapshot(5, task("1", PENDING), task("2", RUNNING)),
            batch(changed(6, task("1", RUNNING), pb.TaskEvent.KIND_DISPATCHED), changed(7, task("2", DONE))),
            batch(changed(8, task("1", DONE)), changed(9, task("1", PENDING), pb.TaskEvent.KIND_RETRIED)),
        ]
    )
    seen: list[list[str]] = []
    done = client(ch).wait(["1", "2"], on_change=lambda ts: seen.append([t.state.value for t in ts]))
    assert [(t.id, t.state) for t in done] == [("1", TaskState.SUCCEEDED), ("2", TaskState.SUCCEEDED)]
    assert seen == [["pending", "running"], ["running", "succeeded"], ["succeeded", "succeeded"]]  # stops when done
    (req,) = ch.requests
    assert list(req.task_ids) == ["1", "2"] and req.exclude_usage and req.exclude_executors
    assert not req.exclude_progress and req.max_batch == c.WAIT_BATCH


def test_a_plain_wait_asks_for_the_ends_of_its_tasks_alone() -> None:
    ch = WatchChannel([snapshot(5, task("1", RUNNING)), batch(changed(6, task("1", DONE)))])
    assert [t.state for t in client(ch).wait(["1"])] == [TaskState.SUCCEEDED]
    (req,) = ch.requests
    assert req.exclude_unfinished and req.exclude_progress and list(req.task_ids) == ["1"]


def test_on_counts_gets_how_many_tasks_are_in_each_state_after_each_message_without_progress_events() -> None:
    """A progress line needs the counts alone: no list of tasks per message, and no progress events asked for."""
    ch = WatchChannel(
        [
            snapshot(5, task("1", PENDING), task("2", RUNNING)),
            batch(changed(6, task("1", RUNNING), pb.TaskEvent.KIND_DISPATCHED), changed(7, task("2", DONE))),
            batch(changed(8, task("1", DONE))),
        ]
    )
    seen: list[tuple[int, int, dict[str, int]]] = []

    def counted(n: WaitCounts) -> None:
        seen.append((n.finished, n.total, {s.value: k for s, k in n.by_state.items()}))

    done = client(ch).wait(["1", "2"], on_counts=counted)
    assert [t.state for t in done] == [TaskState.SUCCEEDED, TaskState.SUCCEEDED]
    assert seen == [
        (0, 2, {"pending": 1, "running": 1}),
        (1, 2, {"running": 1, "succeeded": 1}),
        (2, 2, {"succeeded": 2}),
    ]
    assert ch.requests[0].exclude_progress and not ch.requests[0].exclude_unfinished  # (running counts too)
    assert WaitCounts.of(done) == WaitCounts({TaskState.SUCCEEDED: 2}, 2)


def test_wait_for_every_task_or_for_more_ids_than_a_watch_takes_watches_them_all() -> None:
    assert list(c.watch_for(None, False).request.task_ids) == []
    assert list(c.watch_for([], False).request.task_ids) == []
    many = [str(i) for i in range(1, MAX_WATCH_IDS + 2)]
    assert list(c.watch_for(many, False).request.task_ids) == []
    assert list(c.watch_for(many[:-1], True).request.task_ids) == many[:-1]
    # A plain wait for listed tasks needs their ends alone; a follow (its dispatch) and a progress line more.
    assert c.watch_for(["1"], False, every_change=False).request.exclude_unfinished
    assert not c.watch_for(["1"], False).request.exclude_unfinished
    assert c.watch_for(None, False, every_change=False).request.exclude_unfinished  # (new tasks still come)


def test_watch_yields_the_events_of_a_batch_one_by_one() -> None:
    ch = WatchChannel([snapshot(1), batch(changed(2, task("1", DONE)), changed(3, task("2", DONE)))])
    events = list(client(ch).watch())
    assert [e.seq for e in events] == [1, 2, 3]
    assert [e.body.task.id for e in events[1:] if isinstance(e.body, TaskEvent)] == ["1", "2"]
    assert not ch.requests[0].task_ids and ch.requests[0].max_batch == 0  # a plain watch asks as before
