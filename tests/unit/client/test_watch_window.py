"""The windowed Watch and the ListTasks page calls: their requests, and batches unpacked in order."""

from __future__ import annotations

from dtask.v1 import common_pb2 as cpb
from dtask.v1 import controller_pb2 as pb
from dtask_client import _calls
from dtask_common import events as ev
from dtask_common.models import TaskState


def test_watch_window_asks_for_a_bounded_snapshot_and_batches() -> None:
    call = _calls.watch_window(True, False, 500, 64)
    assert call.rpc is _calls.WATCH
    r = call.request
    assert (r.finished_limit, r.max_batch, r.exclude_usage, r.exclude_progress) == (500, 64, False, True)


def test_a_batch_is_unpacked_in_order_and_a_single_event_stays_one() -> None:
    convert = _calls.watch_window(True, True, 0, 8).convert
    queue = [pb.WatchEvent(seq=s, queue=cpb.QueueStatus(pending=s)) for s in (7, 8, 9)]
    got = convert(pb.WatchEvent(batch=pb.EventBatch(events=queue)))
    assert [e.seq for e in got] == [7, 8, 9]
    assert all(isinstance(e.body, ev.QueueEvent) for e in got) and got[2].body.queue.pending == 9  # type: ignore[union-attr]
    assert [e.seq for e in convert(queue[0])] == [7]


def test_task_page_asks_for_one_page_and_returns_the_total() -> None:
    call = _calls.task_page([TaskState.FAILED], None, "gpu-1", "sweep", "after:40", 250)
    assert call.rpc is _calls.LIST_TASKS
    r = call.request
    assert (r.page_size, r.page_token, r.executor, r.name_contains, len(r.states)) == (
        250,
        "after:40",
        "gpu-1",
        "sweep",
        1,
    )
    tasks, token, total = call.convert(pb.ListTasksResponse(next_page_token="after:9", total=1234))
    assert (tasks, token, total) == ([], "after:9", 1234)
