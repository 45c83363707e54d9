"""The Tasks and Executors tabs rendered to text at 80x24 and 160x48: columns share the width by content, the
tab opens on what runs, long-gone executors leave the list unless asked, running tasks show their usage."""

from __future__ import annotations

import pytest
from dtask_common.events import Snapshot, WatchEvent
from dtask_common.models import AttemptUsage, ExecutorState, Identity, Progress, QueueStatus, TaskState
from dtask_tui.app import TuiApp
from dtask_tui.state import Layout, Tab, TuiState
from dtask_tui.status import ConnState

from tests.unit.tui.fakes import NOW, FakeController, cluster, executor, task
from tests.unit.tui.test_widgets import find, make_app

SIZES = [(80, 24), (160, 48)]
ERROR = "RuntimeError: CUDA out of memory"


def app_with(tasks: list, execs: list | None = None) -> TuiApp:
    _, default_execs, usage = cluster()
    st = TuiState("127.0.0.1:50051", clock=lambda: NOW)
    st.apply(WatchEvent(1, NOW, Snapshot(tasks, execs or default_execs, usage, QueueStatus(), last=True)))
    st.set_connection(ConnState.CONNECTED, identity=Identity("operator", "alice", "ctrl@test"))
    return TuiApp(FakeController(), st)


def header(lines: list[str]) -> str:
    return lines[find(lines, "Task ")]


@pytest.mark.parametrize("size", SIZES)
def test_columns_share_the_width_by_content(size: tuple[int, int]) -> None:
    app = make_app()
    app.state.set_layout(Layout.TABLE)
    lines = app.render_text(size)
    head = header(lines)
    for title in ("#", "Task", "State", "Exec", "Dur"):  # the executor and the duration stay at 80 columns
        assert title in head, head
    assert f"failed: {ERROR}" in lines[find(lines, "t4 train-4")]  # the error whole, at 80 columns too
    assert "gpu-1" in lines[find(lines, "t1 train-1")] and "1:39" in lines[find(lines, "t1 train-1")]
    name_width = head.index("State") - head.index("Task")
    assert name_width < size[0] // 3  # the name no longer takes what is left
    tabs = lines[1]
    assert all(f" {i} " in tabs for i in range(1, 7)) and "5 Fa " not in tabs  # no tab cut in its middle


@pytest.mark.parametrize("size", SIZES)
def test_long_names_and_errors_both_get_room(size: tuple[int, int]) -> None:
    long_name = "sweep-" + "x" * 70
    tasks = [
        task(1, TaskState.SUCCEEDED, name=long_name),
        task(2, TaskState.FAILED, error="ValueError: " + "bad value " * 8),
    ]
    app = app_with(tasks)
    app.state.set_layout(Layout.TABLE)
    lines = app.render_text(size)
    name_row, error_row = lines[find(lines, "t1 sweep-")], lines[find(lines, "t2 train-2")]
    assert "ValueError: bad value" in error_row and "sweep-xxxxxxxx" in name_row
    shown_name = len(name_row.split()[1].rstrip("…"))
    shown_error = len(error_row[error_row.index("failed:") :].split("  ")[0])
    if size[0] == 160:  # both too long for the line: each gets a fair part, neither all of it
        assert 30 <= shown_name < len(long_name) and 30 <= shown_error


@pytest.mark.parametrize("size", SIZES)
def test_tasks_tab_opens_on_what_runs(size: tuple[int, int]) -> None:
    tasks = [task(i, TaskState.SUCCEEDED) for i in range(1, 30)]
    tasks[24] = task(25, TaskState.RUNNING, progress=Progress("", 3, 10))
    app = app_with(tasks)
    lines = app.render_text(size)
    assert app.state.focused_task() is not None and app.state.focused_task().id == "t25"  # type: ignore[union-attr]
    assert "t25 train-25" in "\n".join(lines) and "train-25  t25" in lines[find(lines, "train-25  t25")]
    assert "row 25/29" in lines[1]


@pytest.mark.parametrize("size", SIZES)
def test_tasks_tab_opens_on_the_newest_task_when_nothing_runs(size: tuple[int, int]) -> None:
    tasks = [task(i, TaskState.SUCCEEDED) for i in range(1, 40)]
    app = app_with(tasks)
    lines = app.render_text(size)
    assert app.state.focused_task().id == "t39"  # type: ignore[union-attr]
    find(lines, "train-39  t39")  # the details show it


@pytest.mark.parametrize("size", SIZES)
def test_running_tasks_show_their_usage(size: tuple[int, int]) -> None:
    t1 = task(1, TaskState.RUNNING, progress=Progress("", 3, 10))
    t1.usage = AttemptUsage("t1", 1, 180.0, 3 << 30, 5 << 30, 12.0)
    t2 = task(2, TaskState.SUCCEEDED)
    app = app_with([t1, t2])
    app.state.set_layout(Layout.HORIZONTAL)
    lines = app.render_text(size)
    head = header(lines)
    assert "CPU" in head and "Mem" in head
    row = lines[find(lines, "t1 train-1")]
    assert "180%" in row and "3.0G" in row
    if size[0] == 160:
        assert "GPU mem" in head and "5.0G" in row
    assert "CPU 180%  memory 3.0G  GPU memory 5.0G" in lines[find(lines, "Usage")]


def test_usage_samples_on_watch_reach_the_running_task() -> None:
    st = make_app().state
    sample = st.executors["gpu-1"].last_usage
    assert sample is not None
    from dataclasses import replace

    st.add_sample("gpu-1", replace(sample, at=NOW + 1, attempts=(AttemptUsage("t1", 1, 50.0, 1 << 20),)))
    assert st.tasks["t1"].usage is not None and st.tasks["t1"].usage.rss_bytes == 1 << 20
    st.add_sample("gpu-1", replace(sample, at=NOW + 2, attempts=(AttemptUsage("t3", 1, 50.0, 1 << 20),)))
    assert st.tasks["t3"].usage is None  # t3 is not running: a stray sample is not shown


@pytest.mark.parametrize("size", SIZES)
def test_executors_gone_longer_than_lost_after_leave_the_tab_unless_asked(size: tuple[int, int]) -> None:
    old = executor("old-1", ExecutorState.GONE)
    old.last_seen = NOW - 3600
    recent = executor("dead-2", ExecutorState.DEAD)
    recent.last_seen = NOW - 5
    app = app_with([task(1, TaskState.SUCCEEDED)], [executor("gpu-1"), old, recent])
    app.state.lost_after_s = 60.0
    app.state.switch_tab(Tab.EXECUTORS)
    screen = "\n".join(app.render_text(size))
    assert "gpu-1" in screen and "dead-2" in screen and "old-1" not in screen
    assert "1 long gone hidden: a" in screen
    app.keypress("a")
    screen = "\n".join(app.render_text(size))
    assert "old-1" in screen and "long gone hidden" not in screen
    app.keypress("a")
    assert "old-1" not in "\n".join(app.render_text(size))
