"""Everything the TUI shows, as plain data fed by Watch events (listed cluster, tab, focus, output); no urwid."""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum

from dtask_common.models import ExecutorInfo, Identity, Task, TaskState

from dtask_tui.cluster import HISTORY
from dtask_tui.output_tail import OutputTail
from dtask_tui.paged import FINISHED_LIMIT, LIVE_CAP, PagedListing
from dtask_tui.results import SweepResults
from dtask_tui.status import MESSAGE_SECONDS, Connection, ConnState, Message
from dtask_tui.window import PAGE_SIZE, ROW_CAP


class Tab(StrEnum):
    TASKS = "tasks"
    EXECUTORS = "executors"


class Chart(StrEnum):
    TASK = "task"  # every metric of the focused task
    SWEEP = "sweep"  # one metric of every task of the focused task's sweep


class Layout(StrEnum):
    HORIZONTAL = "horizontal"  # table above, details below
    VERTICAL = "vertical"  # table left, details right
    TABLE = "table"  # table only


class TuiState(PagedListing):
    """Tasks, executors, usage history, filters, focus and connection; fed by Watch events and pages."""

    def __init__(
        self,
        address: str = "",
        history: int = HISTORY,
        clock: Callable[[], float] = time.time,
        *,
        page_size: int = PAGE_SIZE,
        row_cap: int = ROW_CAP,
        live_cap: int = LIVE_CAP,
        finished_limit: int = FINISHED_LIMIT,
    ):
        super().__init__(
            history, clock, page_size=page_size, row_cap=row_cap, live_cap=live_cap, finished_limit=finished_limit
        )
        self.connection = Connection(address)
        self.tab = Tab.TASKS
        self.layout = Layout.HORIZONTAL
        self.show_help = False
        self.help_top = 0
        self.focus_task: str | None = None
        self.focus_executor: str | None = None
        self.output: OutputTail | None = None
        self.output_open = False
        self.output_top: int | None = None  # first line shown in the output view; None follows the end
        self.message: Message | None = None
        self.chart: Chart | None = None  # the full-screen chart view shown, if any
        self.chart_task: str | None = None  # the task it was opened on
        self.chart_metric = 0  # which metric (index into the names) it starts with
        self.results: SweepResults | None = None  # the Results view, while open

    # ---- connection and messages --------------------------------------------------------
    def set_connection(self, state: ConnState, error: str = "", identity: Identity | None = None) -> None:
        c = self.connection
        if state is not c.state:
            c.since = self.clock()
        c.state = state
        c.error = error
        if identity is not None:
            c.identity = identity
        if state is ConnState.CONNECTED:
            c.attempts = 0
        elif state is ConnState.RECONNECTING:
            c.attempts += 1

    def say(self, text: str, level: str = "info") -> None:
        self.message = Message(text, level, self.clock())

    def current_message(self) -> Message | None:
        m = self.message
        if m is not None and self.clock() - m.at > MESSAGE_SECONDS:
            self.message = m = None
        return m

    # ---- tab, layout, focus --------------------------------------------------------------
    def switch_tab(self, tab: Tab | str) -> None:
        self.tab = Tab(tab)

    def set_layout(self, layout: Layout | str) -> None:
        self.layout = Layout(layout)

    def rows(self) -> list[str]:
        return self.view() if self.tab is Tab.TASKS else self.executor_view()

    def focus_index(self) -> int:
        """Index of the focused row in the current tab (0 when nothing is focused)."""
        rows = self.rows()
        if not rows:
            return 0
        if self.tab is Tab.TASKS:
            pos = self.view_position(self.focus_task)
        else:
            pos = (
                rows.index(self.focus_executor)
                if self.focus_executor in self.executors and self.focus_executor in rows
                else None
            )
        if pos is None:
            key = self.opening_row(rows) if self.tab is Tab.TASKS and self.focus_task is None else rows[0]
            self._set_focus_key(key)
            pos = rows.index(key)
        return pos

    def opening_row(self, rows: list[str]) -> str:
        """Where the Tasks tab opens: the first running task listed, else the newest task listed (above the
        paged threshold, where only a window of rows is loaded: the first row)."""
        if self.paged:
            return rows[0]
        listed = [self.tasks[i] for i in rows if i in self.tasks]
        running = [t for t in listed if t.state is TaskState.RUNNING]
        if running:
            return running[0].id
        if not listed:
            return rows[0]
        return max(listed, key=lambda t: (t.submitted_at or 0.0, len(t.id), t.id)).id

    def _set_focus_key(self, key: str | None) -> None:
        if self.tab is Tab.TASKS:
            self.focus_task = key
        else:
            self.focus_executor = key

    def set_focus_index(self, index: int) -> None:
        rows = self.rows()
        if not rows:
            return
        self._set_focus_key(rows[max(0, min(len(rows) - 1, index))])

    def move_focus(self, delta: int) -> None:
        self.set_focus_index(self.focus_index() + delta)

    def focused_task(self) -> Task | None:
        if not self.tasks:
            return None
        view = self.view()
        if view and self.focus_task is None:
            self.focus_task = self.opening_row(view)
        elif view and self.view_position(self.focus_task) is None:
            self.focus_task = view[0]
        return self.tasks.get(self.focus_task or "") if view else None

    def focused_executor(self) -> ExecutorInfo | None:
        if self.focus_executor not in self.executors:
            view = self.executor_view()
            self.focus_executor = view[0] if view else None
        return self.executors.get(self.focus_executor or "")

    # ---- output --------------------------------------------------------------------------
    def output_for(self, task_id: str, attempt: int) -> OutputTail:
        """The output buffer for this attempt, starting a fresh one when it changes."""
        if self.output is None or self.output.task_id != task_id or self.output.attempt != attempt:
            self.output = OutputTail(task_id, attempt)
        return self.output
