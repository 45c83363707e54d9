"""dtask-tui's connection code against a real controller holding 3,000 tasks, with a window of 1,000 rows."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from dtask_client import AsyncController
from dtask_common.models import TaskSpec, TaskState
from dtask_tui.app import TuiApp
from dtask_tui.state import TuiState

from tests.integration.tui.store_fill import fill_store
from tests.support import start_controller
from tests.unit.tui.test_app import until

N = 3000
PAGE, CAP, LIVE, FINISHED = 200, 1000, 100, 50
SIZE = (80, 24)


def screen(app: TuiApp) -> str:
    return "\n".join(app.render_text(SIZE))


def table_ids(app: TuiApp) -> list[str]:
    return [line.split()[0] for line in app.render_text(SIZE) if re.match(r"\d+ ", line)]


async def settled(app: TuiApp) -> None:
    await until(lambda: not app.pager.running and app.state.window.in_flight is None, timeout=20)


def test_the_tui_loads_a_window_and_pages_the_rest(home: Path) -> None:
    counts = fill_store(home / "controller.db", N)
    ctl = start_controller(home)

    async def scenario() -> None:
        client = AsyncController(ctl.address, certs=home / "certs")
        st = TuiState(ctl.address, page_size=PAGE, row_cap=CAP, live_cap=LIVE, finished_limit=FINISHED)
        app = TuiApp(client, st)
        await app.start()
        try:
            await until(lambda: st.synced and st.window.pages > 0, timeout=20)
            await settled(app)
            # the first screen: the first page only, the counts from the controller
            assert st.paged and st.window.ids == [str(i) for i in range(1, PAGE + 1)]
            s = screen(app)
            assert f"row 1/{N}" in s and f"ok {counts[TaskState.SUCCEEDED]}" in s
            assert table_ids(app)[:2] == ["1", "2"]
            assert len(st.tasks) <= CAP + LIVE
            # paging down to row 2,500: only a window is ever held
            while st.first_row() + st.focus_index() < 2500:
                app.keypress("end")
                await settled(app)
                assert len(st.window.ids) <= CAP and len(st.tasks) <= CAP + LIVE
            first = st.first_row()
            assert first > 0 and st.window.ids == [str(i) for i in range(first + 1, first + len(st.window.ids) + 1)]
            assert app.pager.pages >= 2500 // PAGE
            row = st.first_row() + st.focus_index() + 1
            assert f"row {row}/{N}" in screen(app) and st.focus_task == str(row)
            # a filter pages again from the controller
            app.keypress("5")
            await settled(app)
            failed = counts[TaskState.FAILED]
            assert len(st.window.ids) == failed and f"row 1/{failed}" in screen(app)
            assert all(st.tasks[i].state is TaskState.FAILED for i in st.window.ids)
            # a new task is counted live
            await client.submit(TaskSpec(name="late", shell="true"))
            pending = counts[TaskState.PENDING] + 1
            await until(lambda: f"pend {pending}" in screen(app), timeout=20)
        finally:
            await app.stop()

    try:
        asyncio.run(asyncio.wait_for(scenario(), 90))
    finally:
        ctl.stop()
