"""The app driven by keys, with a fake controller client: tabs, filters, search, dialogs, export, feed."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from dtask_client import ControllerUnavailable, DtaskError
from dtask_common.export import export_tasks, to_json
from dtask_common.models import TaskState
from dtask_tui import dispatch
from dtask_tui.app import TuiApp
from dtask_tui.dialogs import ConfirmDialog, ExportDialog
from dtask_tui.listing import Filter
from dtask_tui.state import Layout, Tab, TuiState
from dtask_tui.status import ConnState

from tests.unit.tui.fakes import NOW, FakeController, progress_event

SIZE = (120, 32)


async def until(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    """Yield to the loop until cond holds (bounded)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.002)


def run(test: Callable[..., Awaitable[None]], *args: Any) -> None:
    asyncio.run(asyncio.wait_for(test(*args), 15))


async def started(fc: FakeController, export_dir: Path | None = None) -> TuiApp:
    app = TuiApp(fc, TuiState(fc.address, clock=lambda: NOW), export_dir=export_dir, poll_interval=0.01)
    await app.start()
    await until(lambda: app.state.synced and app.state.connection.identity is not None)
    return app


def screen(app: TuiApp) -> str:
    return "\n".join(app.render_text(SIZE))


def press(app: TuiApp, *keys: str) -> None:
    for k in keys:
        app.keypress(k)


def test_tabs_layouts_and_help() -> None:
    async def t() -> None:
        app = await started(FakeController())
        assert "Dispatched" in screen(app)
        press(app, "e")
        s = screen(app)
        assert app.state.tab is Tab.EXECUTORS and "Executor" in s and "VMem" in s and "dead-1" in s
        press(app, "tab")
        assert app.state.tab is Tab.TASKS
        press(app, "w")
        assert app.state.layout is Layout.TABLE and "Command" not in screen(app)
        press(app, "v")
        assert app.state.layout is Layout.VERTICAL and "Command" in screen(app)
        press(app, "h")
        assert app.state.layout is Layout.HORIZONTAL
        press(app, "?")
        assert "Export all tasks to a JSON file" in screen(app)
        press(app, "esc")
        assert "Export all tasks to a JSON file" not in screen(app)
        press(app, "f1")
        assert app.state.show_help
        press(app, "f1")
        assert not app.state.show_help
        await app.stop()
        assert app.client.closed  # type: ignore[attr-defined]

    run(t)


def test_filters_sort_and_navigation() -> None:
    async def t() -> None:
        app = await started(FakeController())
        press(app, "3")
        s = screen(app)
        assert app.state.task_filter is Filter.RUNNING
        assert "train-1" in s and "eval-6" in s and "train-2" not in s
        press(app, "f")
        assert app.state.task_filter is Filter.SUCCEEDED and "train-3" in screen(app)
        press(app, "5")
        assert "train-4" in screen(app) and "train-3" not in screen(app)
        press(app, "1", "end")
        assert app.state.focus_task == "t6"
        press(app, "home", "down", "down")
        assert app.state.focus_task == "t3"
        press(app, "page down")
        assert app.state.focus_task == "t6"
        press(app, "up")
        assert app.state.focus_task == "t5"
        press(app, "s")
        assert app.state.sort == "name" and "Task↑" in screen(app)
        press(app, "S")
        assert app.state.reverse and "Task↓" in screen(app)
        await app.stop()

    run(t)


def test_search_by_name_and_tag() -> None:
    async def t() -> None:
        app = await started(FakeController())
        press(app, "/", "e", "v", "a", "l")
        s = screen(app)
        assert "Search" in s and "eval-6" in s and "train-1" not in s
        press(app, "enter")
        assert app.search_edit is None and app.state.search == "eval"
        press(app, "/", "backspace", "backspace", "backspace", "backspace", "s", "w", "e", "e", "p", "enter")
        assert app.state.view() == ["t2"]
        press(app, "esc")
        assert app.state.search == "" and len(app.state.view()) == 6
        await app.stop()

    run(t)


def test_cancel_dialog_asks_then_cancels() -> None:
    async def t() -> None:
        fc = FakeController()
        app = await started(fc)
        press(app, "c")
        assert isinstance(app.dialog, ConfirmDialog)
        s = screen(app)
        assert "Cancel task train-1 (t1, running)?" in s and "Yes" in s and "No" in s
        press(app, "enter")  # the default button is No
        assert app.dialog is None and ("cancel", "t1") not in fc.calls
        press(app, "c", "n")
        assert app.dialog is None and ("cancel", "t1") not in fc.calls
        press(app, "c", "left", "enter")  # move to Yes
        await app.actions.settle()
        assert ("cancel", "t1") in fc.calls
        assert app.state.tasks["t1"].state is TaskState.CANCELLED
        assert "cancel train-1 (t1): now cancelled" in screen(app)
        press(app, "c")  # now finished: refused locally, no dialog
        assert app.dialog is None and "already finished" in screen(app)
        await app.stop()

    run(t)


def test_retry_pause_and_drain() -> None:
    async def t() -> None:
        fc = FakeController()
        app = await started(fc)
        press(app, "5", "r", "y")  # the failed task
        await app.actions.settle()
        assert ("retry", "t4") in fc.calls
        press(app, "p", "y")
        await app.actions.settle()
        assert ("pause", None) in fc.calls and "PAUSED" in screen(app)
        press(app, "p", "y")
        await app.actions.settle()
        assert ("resume", None) in fc.calls and "PAUSED" not in screen(app)
        press(app, "e", "end", "d")
        assert "Drain gpu-1?" in screen(app)
        press(app, "y")
        await app.actions.settle()
        assert ("drain", ("gpu-1", False)) in fc.calls and "gpu-1 is now draining" in screen(app)
        press(app, "d")
        assert "Undrain gpu-1?" in screen(app)
        press(app, "esc")
        assert app.dialog is None
        await app.stop()

    run(t)


def test_viewer_actions_are_unavailable() -> None:
    async def t() -> None:
        fc = FakeController(role="viewer")
        app = await started(fc)
        for key in ("c", "r", "p"):
            press(app, key)
            assert app.dialog is None
            assert "unavailable: this is a viewer certificate" in screen(app)
        press(app, "e", "d")
        assert app.dialog is None
        assert not [c for c in fc.calls if c[0] in ("cancel", "retry", "pause", "drain")]
        await app.stop()

    run(t)


def test_action_error_is_shown() -> None:
    async def t() -> None:
        fc = FakeController()
        app = await started(fc)

        async def refuse(task_id: str) -> Any:
            raise DtaskError("PERMISSION_DENIED: role viewer may not CancelTask", "PERMISSION_DENIED")

        fc.cancel = refuse  # type: ignore[method-assign]
        press(app, "c", "y")
        await app.actions.settle()
        assert "failed: PERMISSION_DENIED" in screen(app)
        await app.stop()

    run(t)


def test_export_dialog_writes_the_same_json_as_dtask_export(tmp_path: Path) -> None:
    async def t() -> None:
        fc = FakeController()
        app = await started(fc, tmp_path)
        press(app, "ctrl e")
        assert isinstance(app.dialog, ExportDialog)
        path = app.dialog.path
        assert re.fullmatch(re.escape(str(tmp_path)) + r"/tasks_\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d\.json", path)
        assert "Export tasks" in screen(app)
        press(app, "enter")
        await app.actions.settle()
        data = json.loads(Path(path).read_text())
        expected = json.loads(to_json(export_tasks(await fc.tasks(), fc.address)))
        assert data["exported_at"] and data.pop("exported_at") != ""
        expected.pop("exported_at")
        assert data == expected and len(data["tasks"]) == 6
        assert "exported 6 tasks to" in screen(app)
        assert app.state.message is not None and app.state.message.text == f"exported 6 tasks to {path}"
        # an edited path; an existing file is never overwritten
        press(app, "ctrl e", *["backspace"] * len(path), *"mine.json", "enter")
        await app.actions.settle()
        assert json.loads((tmp_path / "mine.json").read_text())["tasks"][0]["id"] == "t1"
        press(app, "ctrl e", *["backspace"] * 200, *"mine.json", "enter")
        assert isinstance(app.dialog, ExportDialog) and "exists; choose another name" in screen(app)
        press(app, "esc")
        assert app.dialog is None
        await app.stop()

    run(t)


def test_live_events_reach_the_screen() -> None:
    async def t() -> None:
        fc = FakeController()
        app = await started(fc)
        fc.events.put_nowait(progress_event(2, "t1", 77))
        await until(lambda: app.state.tasks["t1"].progress.step == 77)  # type: ignore[union-attr]
        assert "77/100 77%" in screen(app)
        await app.stop()

    run(t)


def test_output_view_follows_the_task() -> None:
    async def t() -> None:
        fc = FakeController()
        app = await started(fc)
        press(app, "l")
        assert app.state.output_open
        await until(lambda: app.state.output is not None and b"45/100" in app.state.output.data)
        s = screen(app)
        assert "Output of train-1 (t1) attempt 1" in s and "following" in s
        assert "epoch 2 loss=0.7" in s
        assert ("logs", ("t1", 1, True)) in fc.calls
        press(app, "home")
        assert "line 1-3 of 3" in screen(app)
        press(app, "f")
        assert "following" in screen(app)
        press(app, "up")
        assert "line 1-3 of 3" in screen(app)
        press(app, "down")  # back at the end: follows again
        assert "following" in screen(app)
        press(app, "esc")
        assert not app.state.output_open and "Dispatched" in screen(app)
        await app.stop()

    run(t)


@pytest.mark.parametrize("key", ["q", "ctrl q", "ctrl d"])
def test_quit_keys(key: str) -> None:
    async def t() -> None:
        app = await started(FakeController())
        press(app, key)
        assert app.quitting
        await app.stop()

    run(t)


def test_watch_broken_falls_back_to_polling() -> None:
    async def t() -> None:
        fc = FakeController(watch_error=DtaskError("the controller does not serve Watch", "UNIMPLEMENTED"))
        app = await started(fc)
        await until(lambda: app.state.connection.state is ConnState.POLLING)
        s = screen(app)
        assert "polling every second" in s and "train-1" in s
        n = sum(1 for c in fc.calls if c[0] == "tasks")
        await until(lambda: sum(1 for c in fc.calls if c[0] == "tasks") > n)  # keeps polling
        await app.stop()

    run(t)


def test_reconnects_after_losing_the_controller() -> None:
    async def t() -> None:
        fc = FakeController()
        app = await started(fc)
        assert app.state.connection.state is ConnState.CONNECTED
        fc.events.put_nowait(ControllerUnavailable("lost the controller at 127.0.0.1:50051"))
        await until(lambda: app.state.connection.state is ConnState.RECONNECTING)
        s = screen(app)
        assert "Disconnected" in s and "lost the controller" in s
        await until(lambda: app.state.connection.state is ConnState.CONNECTED)
        assert fc.watches == 2 and "Disconnected" not in screen(app)
        await app.stop()

    run(t)


def test_redraws_are_coalesced() -> None:
    async def t() -> None:
        class CountingLoop:
            def __init__(self) -> None:
                self.alarms: list[float] = []

            def set_alarm_in(self, sec: float, cb: Callable[..., None]) -> None:
                self.alarms.append(sec)

        app = await started(FakeController())
        loop = CountingLoop()
        app.loop = loop  # type: ignore[assignment]
        for _ in range(1000):
            app.request_redraw()
        assert len(loop.alarms) == 1
        app._redraw_alarm()
        app.request_redraw()
        assert len(loop.alarms) == 2 and loop.alarms[1] > 0.05  # next redraw waits out the 100 ms
        app.loop = None
        await app.stop()

    run(t)


def test_dtask_tui_does_not_import_the_wire_protocol() -> None:
    src = Path(__file__).resolve().parents[3] / "clients" / "tui" / "src" / "dtask_tui"
    offenders = [
        p.name for p in src.rglob("*.py") if re.search(r"^\s*(from|import)\s+(dtask\.v1|grpc)\b", p.read_text(), re.M)
    ]
    assert offenders == []


def test_mouse_click_focuses_a_row_and_wheel_scrolls() -> None:
    async def t() -> None:
        app = await started(FakeController())
        app.state.set_layout(Layout.TABLE)
        app.render_text(SIZE)
        # rows: top bar, filter bar, table header, then tasks t1..t6
        assert app.root.mouse_event(SIZE, "mouse press", 1, 5, 3 + 3, True)
        assert app.state.focus_task == "t4"
        app.root.mouse_event(SIZE, "mouse press", 5, 5, 10, True)
        assert app.state.focus_task == "t6"
        app.root.mouse_event(SIZE, "mouse press", 4, 5, 10, True)
        assert app.state.focus_task == "t3"
        await app.stop()

    run(t)


def test_help_scrolls_on_a_small_terminal() -> None:
    async def t() -> None:
        app = await started(FakeController())
        press(app, "?")
        small = "\n".join(app.render_text((80, 24)))
        assert "Switch tab" in small and "Top of the output" not in small
        press(app, *["down"] * 40)
        small = "\n".join(app.render_text((80, 24)))
        assert "Top of the output" in small and "Switch tab" not in small
        press(app, "?", "?")  # reopening starts at the top again
        assert "Switch tab" in "\n".join(app.render_text((80, 24)))
        wide = "\n".join(app.render_text((160, 48)))
        assert "Switch tab" in wide and "Top of the output" in wide  # two columns: everything fits
        await app.stop()

    run(t)


def test_polling_that_loses_the_controller_shows_reconnecting() -> None:
    async def t() -> None:
        fc = FakeController(watch_error=DtaskError("the controller does not serve Watch", "UNIMPLEMENTED"))
        app = await started(fc)
        await until(lambda: app.state.connection.state is ConnState.POLLING)

        async def gone(*_: Any, **__: Any) -> Any:
            raise ControllerUnavailable("cannot reach the controller at 127.0.0.1:50051")

        fc.tasks = gone  # type: ignore[method-assign]
        await until(lambda: app.state.connection.state is ConnState.RECONNECTING)
        assert "cannot reach the controller" in screen(app)
        assert "train-1" in screen(app)  # the last picture stays on screen
        await app.stop()

    run(t)


def test_a_command_the_dispatch_does_not_know_is_an_error_not_dropped() -> None:
    app = TuiApp(FakeController(), TuiState(clock=lambda: NOW))
    with pytest.raises(AssertionError):
        dispatch.run_command(app, "no-such-command")  # type: ignore[arg-type]


def test_stopping_logs_a_background_failure_instead_of_hiding_it(caplog: pytest.LogCaptureFixture) -> None:
    async def t() -> None:
        app = await started(FakeController())

        async def broken() -> str:
            try:
                await asyncio.sleep(10)
            finally:
                raise RuntimeError("unexpected")  # noqa: B012 - fails while being cancelled

        app.actions.spawn(broken())
        await asyncio.sleep(0.01)  # the action is under way
        with caplog.at_level(logging.ERROR, logger="dtask_tui.app"):
            await app.stop()
        assert any(
            r.name == "dtask_tui.app" and r.exc_info and "unexpected" in str(r.exc_info[1]) for r in caplog.records
        )

    run(t)
