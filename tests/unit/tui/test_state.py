"""TuiState without urwid: Watch events in, state out."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import pytest
from dtask_common.events import ExecutorEventKind, QueueEvent, Snapshot, TaskEventKind, WatchEvent
from dtask_common.models import ExecutorState, Identity, Progress, QueueStatus, TaskState
from dtask_tui.listing import Filter
from dtask_tui.state import Tab, TuiState
from dtask_tui.status import ConnState

from tests.unit.tui.fakes import (
    NOW,
    cluster,
    executor,
    executor_event,
    progress_event,
    snapshot_event,
    task,
    task_event,
    usage_event,
)


def fresh() -> TuiState:
    st = TuiState("127.0.0.1:50051", clock=lambda: NOW)
    st.apply(snapshot_event())
    return st


def test_state_module_does_not_import_urwid() -> None:
    code = "import sys, dtask_tui.state, dtask_tui.keys, dtask_tui.format; print('urwid' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_snapshot_fills_tasks_executors_usage_and_counts() -> None:
    st = fresh()
    assert st.synced
    assert set(st.tasks) == {"t1", "t2", "t3", "t4", "t5", "t6"}
    assert set(st.executors) == {"gpu-1", "dead-1", "big-1"}
    assert len(st.usage["gpu-1"]) == 60
    counts = st.filter_counts()
    assert counts[Filter.ALL] == 6 and counts[Filter.RUNNING] == 2 and counts[Filter.FAILED] == 1


def test_snapshot_in_chunks_applies_only_at_the_last_chunk() -> None:
    tasks, execs, usage = cluster()
    st = TuiState()
    st.apply(WatchEvent(1, NOW, Snapshot(tasks[:3], execs, usage, None, last=False)))
    assert not st.synced and st.tasks == {}
    st.apply(WatchEvent(2, NOW, Snapshot(tasks[3:], [], [], QueueStatus(paused=True), last=True)))
    assert st.synced and len(st.tasks) == 6 and st.queue.paused


def test_resync_replaces_everything_with_the_new_snapshot() -> None:
    st = fresh()
    only = task(99, TaskState.PENDING)
    st.apply(WatchEvent(5, NOW, Snapshot([only], [], [], None, last=True), resync=True))
    assert list(st.tasks) == ["t99"]
    assert st.executors == {} and st.filter_counts()[Filter.ALL] == 1


def test_task_events_move_counts_and_the_filtered_view() -> None:
    st = fresh()
    st.set_filter(Filter.RUNNING)
    assert st.view() == ["t1", "t6"]
    done = task(1, TaskState.SUCCEEDED)
    st.apply(task_event(2, done, TaskEventKind.FINISHED))
    assert st.view() == ["t6"]
    assert st.filter_counts()[Filter.SUCCEEDED] == 2 and st.filter_counts()[Filter.RUNNING] == 1
    st.apply(task_event(3, task(7, TaskState.PENDING), TaskEventKind.ADDED))
    st.set_filter(Filter.PENDING)
    assert st.view() == ["t2", "t7"]


def test_progress_updates_the_current_attempt_only() -> None:
    st = fresh()
    st.apply(progress_event(2, "t1", 60))
    p = st.tasks["t1"].progress
    assert p is not None and p.step == 60 and p.fraction == 0.6
    st.apply(WatchEvent(3, NOW, progress_event(3, "t1", 5).body.__class__("t1", 7, Progress("x", 1, 2))))
    assert st.tasks["t1"].progress is not None and st.tasks["t1"].progress.step == 60  # stale attempt ignored
    st.apply(progress_event(4, "nope", 1))  # unknown task: ignored, no error


def test_task_update_without_progress_keeps_the_last_progress_while_running() -> None:
    st = fresh()
    st.apply(progress_event(2, "t1", 70))
    st.apply(task_event(3, task(1, TaskState.RUNNING)))
    assert st.tasks["t1"].progress is not None and st.tasks["t1"].progress.step == 70


def test_usage_history_is_bounded_and_updates_last_usage() -> None:
    st = fresh()
    for k in range(100):
        st.apply(usage_event(10 + k, "gpu-1", NOW + k, cpu=float(k)))
    hist = st.usage["gpu-1"]
    assert len(hist) == 60 and hist[-1].cpu_percent == 99.0 and hist[0].cpu_percent == 40.0
    u = st.executors["gpu-1"].last_usage
    assert u is not None and u.cpu_percent == 99.0


def test_executor_events_dead_and_gone() -> None:
    st = fresh()
    st.apply(executor_event(2, executor("gpu-1", ExecutorState.DEAD), ExecutorEventKind.DEAD))
    assert st.executors["gpu-1"].dead
    assert st.executors["gpu-1"].last_usage is not None
    st.apply(executor_event(3, executor("gpu-1", ExecutorState.GONE), ExecutorEventKind.GONE))
    assert "gpu-1" not in st.executors and "gpu-1" not in st.usage
    st.apply(executor_event(4, executor("new-1", ExecutorState.IDLE), ExecutorEventKind.UP))
    assert st.executor_view() == ["big-1", "dead-1", "new-1"]


def test_queue_event_sets_paused() -> None:
    st = fresh()
    st.apply(WatchEvent(2, NOW, QueueEvent(QueueStatus(paused=True))))
    assert st.queue.paused


def test_search_by_name_tag_id_and_executor() -> None:
    st = fresh()
    st.set_search("EVAL")
    assert st.view() == ["t6"]
    st.set_search("sweep")
    assert st.view() == ["t2"]
    st.set_search("t4")
    assert st.view() == ["t4"]
    st.set_search("@big-1")
    assert st.view() == ["t5", "t6"]
    st.set_search("")
    assert len(st.view()) == 6


def test_sorts() -> None:
    st = fresh()
    st.set_sort("state")
    assert st.view()[:2] == ["t1", "t6"]  # running first
    st.set_sort("name")
    assert st.view()[0] == "t6"  # eval-6 before train-*
    st.toggle_reverse()
    assert st.view()[-1] == "t6"
    st.set_sort("executor", reverse=False)
    assert [st.tasks[i].executor for i in st.view()][:2] == ["big-1", "big-1"]
    for key in ("id", "dispatched", "finished", "duration", "attempts"):
        st.set_sort(key)
        assert sorted(st.view()) == sorted(st.tasks)


def test_natural_id_order() -> None:
    st = TuiState()
    st.replace_all([replace(task(i), submitted_at=NOW) for i in (10, 9, 100, 1)], [], [], None)
    assert st.view() == ["t1", "t9", "t10", "t100"]


def test_focus_follows_the_task_not_the_row() -> None:
    st = fresh()
    st.move_focus(2)
    assert st.focus_task == "t3"
    st.apply(task_event(2, task(0, TaskState.PENDING), TaskEventKind.ADDED))  # a new row above
    assert st.view()[0] == "t0"
    assert st.focused_task() is not None and st.focused_task().id == "t3"  # type: ignore[union-attr]
    assert st.focus_index() == 3
    st.set_filter(Filter.PENDING)  # t3 filtered out: focus falls back to the first visible row
    assert st.focused_task().id == "t0"  # type: ignore[union-attr]
    st.switch_tab(Tab.EXECUTORS)
    st.set_focus_index(99)
    assert st.focus_executor == "gpu-1"


def test_connection_state_and_viewer_role() -> None:
    st = TuiState("h:1", clock=lambda: NOW)
    assert st.connection.state is ConnState.CONNECTING and st.connection.can_act
    st.set_connection(ConnState.RECONNECTING, "refused")
    st.set_connection(ConnState.RECONNECTING, "refused")
    assert st.connection.attempts == 2 and st.connection.error == "refused"
    st.set_connection(ConnState.CONNECTED, identity=Identity("viewer", "bob"))
    assert st.connection.attempts == 0 and not st.connection.can_act


def test_output_tail_is_bounded_and_collapses_carriage_returns() -> None:
    st = TuiState()
    tail = st.output_for("t1", 1)
    tail.add(b"start\nepoch: 10%\repoch: 50%\repoch: 90%\nbad \xff byte\n")
    assert tail.lines() == ["start", "epoch: 90%", "bad \ufffd byte"]
    tail.add(b"x" * 300_000, limit=1000)
    assert len(tail.data) == 1000
    assert st.output_for("t1", 1) is tail and st.output_for("t1", 2) is not tail


def test_messages_expire() -> None:
    now = [NOW]
    st = TuiState(clock=lambda: now[0])
    st.say("done")
    assert st.current_message() is not None
    now[0] += 10
    assert st.current_message() is None


def test_an_event_type_the_state_does_not_know_is_an_error_not_dropped() -> None:
    st = fresh()
    with pytest.raises(AssertionError):
        st.apply(WatchEvent(2, NOW, object()))  # type: ignore[arg-type]
