"""The task table of a controller with more tasks than the TUI holds, rendered at 80x24: pages, eviction, events."""

from __future__ import annotations

import re
from dataclasses import replace

from dtask_common.events import TaskEventKind
from dtask_common.models import QueueStatus, Task, TaskState
from dtask_tui.app import TuiApp
from dtask_tui.connection import MAX_BATCH
from dtask_tui.state import TuiState

from tests.unit.tui.fakes import NOW, FakeController, task, task_event
from tests.unit.tui.test_app import press, run, until

SIZE = (80, 24)
PAGE, CAP, LIVE, FINISHED = 20, 60, 50, 10


def state_of(i: int) -> TaskState:
    if i % 50 == 0:
        return TaskState.RUNNING
    if i > 290:
        return TaskState.PENDING
    if i % 45 == 0:
        return TaskState.FAILED
    return TaskState.SUCCEEDED


def counted(tasks: list[Task]) -> QueueStatus:
    n = {s: sum(1 for t in tasks if t.state is s) for s in TaskState}
    return QueueStatus(
        pending=n[TaskState.PENDING],
        running=n[TaskState.RUNNING],
        succeeded=n[TaskState.SUCCEEDED],
        failed=n[TaskState.FAILED],
        cancelled=n[TaskState.CANCELLED],
        lost=n[TaskState.LOST],
    )


def big(n: int = 300) -> FakeController:
    """A fake controller holding t1..t{n}: mostly succeeded, every 50th running, the last ten pending."""
    fc = FakeController()
    tasks = [task(i, state_of(i)) for i in range(1, n + 1)]
    fc.tasks_by_id = {t.id: t for t in tasks}
    fc.queue_status = counted(tasks)
    return fc


async def paged_app(fc: FakeController) -> TuiApp:
    st = TuiState(fc.address, clock=lambda: NOW, page_size=PAGE, row_cap=CAP, live_cap=LIVE, finished_limit=FINISHED)
    app = TuiApp(fc, st)
    await app.start()
    await until(lambda: st.synced and st.window.pages > 0)
    await settled(app)
    return app


async def settled(app: TuiApp) -> None:
    """Wait until no page call runs and the focus needs none."""
    await until(lambda: not app.pager.running and app.state.window.in_flight is None)


def screen(app: TuiApp) -> str:
    return "\n".join(app.render_text(SIZE))


def table_ids(app: TuiApp) -> list[str]:
    """The task ids drawn in the table, top to bottom."""
    return [line.split()[0] for line in app.render_text(SIZE) if re.match(r"t\d+ ", line)]


async def down(app: TuiApp, rows: int) -> None:
    for _ in range(rows):
        press(app, "down")
        await settled(app)


async def change(fc: FakeController, t: Task, kind: TaskEventKind) -> None:
    """The fake controller's task changes and its Watch tells of it."""
    fc.tasks_by_id[t.id] = t
    fc.queue_status = counted(list(fc.tasks_by_id.values()))
    await fc.events.put(task_event(len(fc.calls) + 2, t, kind))


def page_calls(fc: FakeController) -> list[tuple[object, ...]]:
    return [args for name, args in fc.calls if name == "task_page"]  # type: ignore[misc]


def assert_bounded(app: TuiApp) -> None:
    ids = app.state.window.ids
    assert len(ids) <= CAP
    assert [int(i[1:]) for i in ids] == sorted({int(i[1:]) for i in ids})  # in id order, no duplicates
    assert len(app.state.tasks) <= CAP + LIVE
    assert set(ids) <= set(app.state.tasks)


def test_first_screen_is_the_first_page_and_rows_page_in_as_the_cursor_moves_down() -> None:
    async def t() -> None:
        fc = big()
        app = await paged_app(fc)
        st = app.state
        assert st.paged and fc.watch_args[-1] == (FINISHED, MAX_BATCH)
        assert page_calls(fc) == [((), None, None, "")]
        s = screen(app)
        assert "row 1/300" in s and "pend 9" in s and "ok 279" in s
        assert table_ids(app)[:3] == ["t1", "t2", "t3"]
        assert len(st.window.ids) == PAGE
        # the snapshot brought every unfinished task and the newest finished ones; only unfinished are held
        assert {"t50", "t291", "t300"} <= set(st.tasks) and "t290" not in st.tasks
        await down(app, 18)
        assert len(page_calls(fc)) == 2 and page_calls(fc)[1][3] == "after:t20"
        assert len(st.window.ids) == 2 * PAGE
        await down(app, 30)
        s = screen(app)
        assert "row 49/300" in s and st.focus_task == "t49" and "t49" in table_ids(app)
        assert_bounded(app)
        await app.stop()

    run(t)


def test_eviction_keeps_the_cap_and_scrolling_back_reloads() -> None:
    async def t() -> None:
        fc = big()
        app = await paged_app(fc)
        st = app.state
        await down(app, 199)
        assert st.focus_task == "t200" and "row 200/300" in screen(app)
        assert_bounded(app)
        assert st.window.offset > 0 and "t1" not in st.window.ids and "t1" not in st.tasks
        before = table_ids(app)
        press(app, "up")
        await settled(app)
        assert table_ids(app) == before  # the focus moved up a row, the rows did not jump
        for _ in range(20):
            press(app, "home")
            await settled(app)
            if st.window.offset == 0:
                break
        press(app, "home")
        await settled(app)
        assert st.focus_task == "t1" and table_ids(app)[0] == "t1" and "row 1/300" in screen(app)
        assert_bounded(app)
        await app.stop()

    run(t)


def test_live_events_for_loaded_and_not_loaded_rows() -> None:
    async def t() -> None:
        fc = big()
        app = await paged_app(fc)
        st = app.state
        # a loaded row changes in place; the counts follow
        await change(fc, replace(fc.tasks_by_id["t3"], state=TaskState.FAILED, error="boom"), TaskEventKind.UPDATED)
        await until(lambda: st.tasks["t3"].state is TaskState.FAILED)
        s = screen(app)
        assert "failed: boom" in s and "fail 7" in s and "ok 278" in s
        assert table_ids(app)[:3] == ["t1", "t2", "t3"]
        # a row that is not loaded: held only while unfinished; a kind that does not say the old state: counts asked for
        await change(fc, replace(fc.tasks_by_id["t251"], state=TaskState.PENDING), TaskEventKind.RETRIED)
        await until(lambda: "pend 10" in screen(app) and "ok 277" in screen(app))
        assert "t251" not in st.window.ids and "t251" in st.tasks
        # a new task after the loaded rows: counted, not listed until paged to
        await change(fc, task(301), TaskEventKind.ADDED)
        await until(lambda: "row 1/301" in screen(app))
        assert "t301" not in st.window.ids and "pend 11" in screen(app)
        # in the Failed tab, a task failing inside the loaded range joins at its place
        press(app, "5")
        await settled(app)
        assert table_ids(app) == ["t3", "t45", "t90", "t135", "t180", "t225", "t270"]
        now_failed = replace(fc.tasks_by_id["t100"], state=TaskState.FAILED, error="oom")
        await change(fc, now_failed, TaskEventKind.FINISHED)
        await until(lambda: "t100" in st.window.ids)
        assert table_ids(app) == ["t3", "t45", "t90", "t100", "t135", "t180", "t225", "t270"]
        assert "fail 8" in screen(app) and "run 5" in screen(app)
        # a listed task leaving the filter goes; the focus stays in place
        press(app, "down", "down", "down")
        assert st.focus_task == "t100"
        await change(fc, replace(now_failed, state=TaskState.PENDING), TaskEventKind.RETRIED)
        await until(lambda: "t100" not in st.window.ids)
        assert st.focus_task == "t135" and "row 4/7" in screen(app)
        await app.stop()

    run(t)


def test_filter_and_search_changes_page_again() -> None:
    async def t() -> None:
        fc = big()
        app = await paged_app(fc)
        st = app.state
        await down(app, 30)
        press(app, "3")
        await settled(app)
        assert page_calls(fc)[-1] == ((TaskState.RUNNING,), None, None, "")
        assert table_ids(app) == ["t50", "t100", "t150", "t200", "t250", "t300"]
        assert "row 1/6" in screen(app)
        assert [t.id for t in st.tasks.values() if t.state.finished] == ["t31"]  # only the focus it had
        press(app, "1", "/", "2", "9", "enter")
        await settled(app)
        assert page_calls(fc)[-1] == ((), None, "29", "")
        assert table_ids(app)[:4] == ["t29", "t129", "t229", "t290"] and "row 1/13" in screen(app)
        press(app, "esc", "/", *"@big-1", "enter")
        await settled(app)
        assert page_calls(fc)[-1] == ((), "big-1", None, "")
        assert "no task matches" in screen(app)
        press(app, "s")
        assert "listed in pages" in screen(app) and st.sort == "id"
        await app.stop()

    run(t)


def test_a_small_cluster_is_held_whole() -> None:
    async def t() -> None:
        fc = FakeController()
        st = TuiState(fc.address, clock=lambda: NOW, page_size=PAGE, row_cap=CAP)
        app = TuiApp(fc, st)
        await app.start()
        await until(lambda: st.synced)
        assert not st.paged and fc.watch_args == [(0, MAX_BATCH)] and not page_calls(fc)
        assert len(st.view()) == 6 and "eval-6" in screen(app)
        await app.stop()

    run(t)


def test_a_snapshot_beyond_the_cap_switches_to_pages() -> None:
    async def t() -> None:
        fc = big()
        fc.queue_status = QueueStatus(pending=1)  # counted before 299 more arrived: the snapshot is all of them
        st = TuiState(fc.address, clock=lambda: NOW, page_size=PAGE, row_cap=CAP, live_cap=LIVE)
        app = TuiApp(fc, st)
        await app.start()
        await until(lambda: st.synced and st.window.pages > 0)
        await settled(app)
        assert st.paged and table_ids(app)[:2] == ["t1", "t2"]
        assert_bounded(app)
        await app.stop()

    run(t)
