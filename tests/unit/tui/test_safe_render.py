"""Controller strings rendered to text by the TUI: control and bidi characters escaped, columns measured as drawn."""

from __future__ import annotations

from dtask_common.models import Identity, TaskState
from dtask_tui.app import TuiApp
from dtask_tui.format import cells
from dtask_tui.state import Layout, TuiState
from dtask_tui.status import ConnState
from dtask_tui.widgets.tasks import TaskTable

from tests.unit.tui.fakes import NOW, FakeController, snapshot_event, task, task_event

NAME = "evil\x1b[2J\x1b]52;c;aGk=\x07\u202etxt"
SHOWN = "evil\\x1b[2J\\x1b]52;c;aGk=\\x07\\u202etxt"
FORBIDDEN = {
    *map(chr, range(0x20)),
    "\x7f",
    *map(chr, range(0x80, 0xA0)),
    *"\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c",
}


def hostile_app() -> TuiApp:
    st = TuiState("127.0.0.1:50051", clock=lambda: NOW)
    st.apply(snapshot_event())
    bad = task(
        7,
        TaskState.FAILED,
        name=NAME,
        executor="gpu\x1b[5m",
        tags=("t\u2066ag",),
        error="boom\x1b]0;title\x07 at\nline two\x9b",
    )
    st.apply(task_event(2, bad))
    st.set_connection(ConnState.CONNECTED, identity=Identity("operator", "alice\x1b[8m", "ctrl\u202e@test"))
    return TuiApp(FakeController(), st)


def assert_clean(lines: list[str], cols: int) -> None:
    for line in lines:
        assert not FORBIDDEN & set(line), repr(line)
        assert len(line) == cols, repr(line)


def test_table_details_and_bars_show_escapes_in_their_columns() -> None:
    app = hostile_app()
    app.state.set_layout(Layout.VERTICAL)
    app.state.focus_task = "t7"
    lines = app.render_text((200, 48))
    assert_clean(lines, 200)
    screen = "\n".join(lines)
    assert SHOWN in screen and "gpu\\x1b[5m" in screen and "t\\u2066ag" in screen
    assert "boom\\x1b]0;title\\x07 at" in screen and "line two\\x9b" in screen  # the error, in details
    assert "alice\\x1b[8m" in lines[0] and "ctrl\\u202e@test" in lines[0]


def test_task_table_columns_measure_the_escaped_text() -> None:
    app = hostile_app()
    cols = 160
    table = TaskTable(app.state)
    lines = [b.decode() for b in table.render((cols, 20)).text]
    assert_clean(lines, cols)
    header = lines[0]
    row = next(line for line in lines if SHOWN in line)
    other = next(line for line in lines if "train-2" in line)
    state_col = header.index("State / progress")
    assert row[state_col:].startswith("failed: boom\\x1b]0;title\\x07")
    assert other[state_col:].startswith("pending")
    executor_col = header.index("Executor")
    assert row[executor_col:].startswith("gpu\\x1b[5m ")  # the column as wide as the escaped text
    assert row.index(SHOWN) == other.index("train-2")


def test_output_view_and_confirm_dialog_escape() -> None:
    app = hostile_app()
    app.state.focus_task = "t7"
    app.state.output_for("t7", 1).add(b"\x1b[2J clear \xe2\x80\xae rev \x1b]52;c;aGk=\x07\n")
    app.state.output_open = True
    lines = app.render_text((100, 24))
    assert_clean(lines, 100)
    assert any("\\x1b[2J clear \\u202e rev \\x1b]52;c;aGk=\\x07" in line for line in lines)
    app.state.output_open = False
    app.keypress("c")  # cancel asks first, naming the task
    lines = app.render_text((100, 24))
    assert_clean(lines, 100)
    assert any(SHOWN[:30] in line for line in lines), "\n".join(lines)


def test_wide_characters_take_two_cells_in_the_table() -> None:
    app = hostile_app()
    app.state.apply(task_event(3, task(8, TaskState.FAILED, name="日本語のタスク" * 8, executor="gpu-1", error="x")))
    cols = 120
    lines = [b.decode() for b in TaskTable(app.state).render((cols, 20)).text]
    header = lines[0]
    row = next(line for line in lines if "日本語" in line)
    state_col = header.index("State / progress")
    drawn = cells(row[: row.index("failed: x")])
    assert drawn == state_col and cells(row) == cols and "…" in row  # cut to the column, in cells
