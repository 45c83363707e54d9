"""Widgets rendered to text at 80×24 and 160×48: layouts, dead and 128-core executors, progress, errors."""

from __future__ import annotations

import re

import pytest
from dtask_common.models import Identity
from dtask_tui.app import TuiApp
from dtask_tui.format import BLOCKS
from dtask_tui.state import Layout, Tab, TuiState
from dtask_tui.status import ConnState
from dtask_tui.widgets.executors import ExecutorTable
from dtask_tui.widgets.tasks import TaskTable

from tests.unit.tui.fakes import NOW, FakeController, cluster, executor, snapshot_event

SIZES = [(80, 24), (160, 48)]


def make_app(role: str = "operator") -> TuiApp:
    st = TuiState("127.0.0.1:50051", clock=lambda: NOW)
    st.apply(snapshot_event())
    st.set_connection(ConnState.CONNECTED, identity=Identity(role, "alice", "ctrl@test"))
    return TuiApp(FakeController(role), st)


def attrs_of_row(widget: object, size: tuple[int, int], row: int) -> list[str]:
    canvas = widget.render(size, focus=True)  # type: ignore[attr-defined]
    return [attr for attr, _cs, _text in list(canvas.content())[row] if attr]


def find(lines: list[str], text: str) -> int:
    for i, line in enumerate(lines):
        if text in line:
            return i
    raise AssertionError(f"{text!r} not on screen:\n" + "\n".join(lines))


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("layout", [Layout.HORIZONTAL, Layout.VERTICAL, Layout.TABLE])
def test_tasks_tab_in_every_layout(size: tuple[int, int], layout: Layout) -> None:
    app = make_app()
    app.state.set_layout(layout)
    lines = app.render_text(size)
    assert len(lines) == size[1] and all(len(line) == size[0] for line in lines)
    assert "alice" in lines[0] and "127.0.0.1:50051" in lines[0]
    assert "1 All 6" in lines[1]
    for name in ("train-1", "train-4", "eval-6"):
        find(lines, name)
    assert "45/100 45%" in lines[find(lines, "t1 train-1")]
    assert "e Executors" in lines[-1] and "q quit" in lines[-1]
    details_shown = any("Command" in line for line in lines)
    assert details_shown == (layout is not Layout.TABLE)
    if layout is Layout.VERTICAL:
        assert "│" in lines[find(lines, "Command")]


@pytest.mark.parametrize("size", SIZES)
def test_running_task_progress_bar_is_coloured_by_fraction(size: tuple[int, int]) -> None:
    app = make_app()
    table = TaskTable(app.state)
    rows = size[1] - 4
    lines = [b.decode() for b in table.render((size[0], rows)).text]
    r = find(lines, "train-1")
    canvas = table.render((size[0], rows))
    row = list(canvas.content())[r]
    done = sum(len(text.decode()) for attr, _cs, text in row if attr in ("bar_done", "bar_done/f"))
    todo = sum(len(text.decode()) for attr, _cs, text in row if attr in ("bar_todo", "bar_todo/f"))
    assert done and todo
    assert done / (done + todo) == pytest.approx(0.45, abs=0.05)


@pytest.mark.parametrize("size", SIZES)
def test_failed_task_shows_its_error_in_details(size: tuple[int, int]) -> None:
    app = make_app()
    app.state.set_layout(Layout.VERTICAL if size[0] > 100 else Layout.HORIZONTAL)
    app.state.focus_task = "t4"
    lines = app.render_text(size)
    find(lines, "Error")
    find(lines, "RuntimeError: CUDA out of memory")
    find(lines, "Schedule   retries 1")
    assert re.search(r"t4 train-4 +failed: RuntimeError", "\n".join(lines))
    find(lines, "failed")


def test_succeeded_task_shows_metrics_table_and_output_tail() -> None:
    app = make_app()
    app.state.set_layout(Layout.VERTICAL)
    app.state.focus_task = "t3"
    tail = app.state.output_for("t3", 1)
    tail.add(b"loss = 0.123\nacc = 0.98\nall done\n")
    lines = app.render_text((160, 48))
    assert "0.123" in lines[find(lines, "loss")]
    assert "0.98" in lines[find(lines, "  acc")]
    find(lines, "Output (attempt 1)")
    find(lines, "all done")


@pytest.mark.parametrize("size", SIZES)
def test_executors_tab_dead_row_is_red_and_128_cores_render(size: tuple[int, int]) -> None:
    app = make_app()
    app.state.switch_tab(Tab.EXECUTORS)
    app.state.set_layout(Layout.HORIZONTAL if size[0] < 100 else Layout.VERTICAL)
    lines = app.render_text(size)
    r_dead = find(lines, "dead-1")
    assert "dead" in lines[r_dead][8:]
    attrs = attrs_of_row(app.root, size, r_dead)
    assert "dead" in attrs and not {"low", "mid", "high"} & set(attrs)
    r_big = next(i for i, line in enumerate(lines) if line.startswith("big-1 "))
    bar = [ch for ch in lines[r_big] if ch in BLOCKS]
    assert len(bar) >= 20  # compact one-character-per-core bar, squeezed to fit
    find(lines, "Cores (128)")
    assert "2 live 1 dead" in lines[1] and "slots 2/4 busy" in lines[1] and "136 cores" in lines[1]
    if size[0] >= 160:  # room for the load history sparkline (GPU utilisation on GPU machines)
        assert "Load history" in lines[2] and lines[r_big].split("│")[0].rstrip().endswith("GPU")
    # details of the focused executor (big-1 sorts first): charts or sparklines and GPUs
    find(lines, "GPU 0")
    find(lines, "Usage, last 60 samples")


def test_per_core_columns_when_they_fit() -> None:
    tasks, execs, usage = cluster()
    st = TuiState(clock=lambda: NOW)
    st.replace_all(tasks, [executor("small-1", cores=8)], [], None)
    st.switch_tab(Tab.EXECUTORS)
    table = ExecutorTable(st)
    lines = [b.decode() for b in table.render((160, 10)).text]
    header = lines[0].split()
    assert [h for h in header if h.startswith("c") and h[1:].isdigit()] == [f"c{i}" for i in range(8)]
    narrow = [b.decode() for b in table.render((80, 10)).text]
    assert " c7 " not in narrow[0] and "Cores (8)" in narrow[0]


def test_128_core_executor_alone_renders_at_80_columns() -> None:
    st = TuiState(clock=lambda: NOW)
    st.replace_all([], [executor("huge", cores=128)], [], None)
    st.switch_tab(Tab.EXECUTORS)
    lines = [b.decode() for b in ExecutorTable(st).render((80, 5)).text]
    assert len(lines[1]) == 80 and "huge" in lines[1]
    assert sum(ch in BLOCKS for ch in lines[1]) >= 20


def test_only_visible_rows_are_built() -> None:
    from tests.unit.tui.fakes import task

    st = TuiState(clock=lambda: NOW, row_cap=20_000)  # every task held: no paging
    st.replace_all([task(i) for i in range(10_000)], [], [], None)
    table = TaskTable(st)
    built: list[str] = []
    original = table.cells

    def counting(key: str, columns: list) -> list:  # type: ignore[type-arg]
        built.append(key)
        return original(key, columns)

    table.cells = counting  # type: ignore[method-assign]
    st.set_focus_index(5000)
    lines = [b.decode() for b in table.render((120, 30)).text]
    assert len(built) == 29
    assert any("train-5000" in line for line in lines)
    from dtask_tui.widgets.tasks import FilterBar

    assert "row 5001/10000" in FilterBar(st).render((160,)).text[0].decode()


def test_viewer_sees_actions_as_unavailable() -> None:
    app = make_app(role="viewer")
    lines = app.render_text((160, 48))
    assert "(viewer: read-only)" in lines[-1]
    attrs = attrs_of_row(app.root, (160, 48), 47)
    assert "unavailable" in attrs


def test_disconnected_banner_and_paused_indicator() -> None:
    app = make_app()
    app.state.queue = app.state.queue.__class__(paused=True)
    app.state.set_connection(ConnState.RECONNECTING, "cannot reach the controller at 127.0.0.1:50051")
    lines = app.render_text((120, 30))
    assert "PAUSED" in lines[0]
    assert "pending (paused)" in lines[find(lines, "t2 train-2")]
    assert "reconnecting" in lines[0]
    assert "Disconnected" in lines[1] and "cannot reach the controller" in lines[1]
    attrs = attrs_of_row(app.root, (120, 30), 0)
    assert "conn_bad" in attrs
    app.state.set_connection(ConnState.POLLING, "Watch failed")
    lines = app.render_text((120, 30))
    assert "polling every second" in lines[1]
    assert "conn_warn" in attrs_of_row(app.root, (120, 30), 0)


def test_help_panel_lists_bindings() -> None:
    app = make_app()
    app.state.show_help = True
    lines = app.render_text((160, 48))
    find(lines, "Export all tasks to a JSON file")
    find(lines, "Ctrl+E")


def test_output_view_wraps_long_lines_and_follows_the_end() -> None:
    app = make_app()
    app.state.output_open = True
    tail = app.state.output_for("t1", 1)
    tail.add(("x" * 150 + "END\n").encode() + b"".join(f"line {i}\n".encode() for i in range(100)))
    lines = app.render_text((80, 24))
    assert "Output of train-1 (t1) attempt 1" in lines[1] and "following" in lines[1]
    assert lines[-2].startswith("line 99")
    app.state.output_top = 0
    lines = app.render_text((80, 24))
    assert lines[2] == "x" * 80 and lines[3].startswith("x" * 70 + "END")
