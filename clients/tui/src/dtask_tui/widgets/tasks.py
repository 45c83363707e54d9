"""The Tasks tab: filter bar and the task table (state colours, progress bars for running tasks)."""

from __future__ import annotations

import re

from dtask_common.models import Task, TaskState

from dtask_tui.format import clock, duration, fit, progress_bar, stale_note
from dtask_tui.listing import Filter
from dtask_tui.state import TuiState
from dtask_tui.widgets.base import LineBar, Markup
from dtask_tui.widgets.palette import STATE_ATTR
from dtask_tui.widgets.table import Column, TableView, shared_columns
from dtask_tui.widgets.task_columns import task_columns, usage_cell


class TaskTable(TableView):
    """All tasks passing the filter and search, sorted; only visible rows are drawn."""

    def row_ids(self) -> list[str]:
        return self.state.view()

    def anchor_position(self, key: str) -> int | None:
        return self.state.view_position(key) if self.state.paged else None

    def empty_text(self) -> str:
        if self.state.paged and self.state.window.loading:
            return "loading tasks…"
        if not self.state.synced:
            return "waiting for the controller…"
        if self.state.tasks or self.state.paged:
            return "no task matches the filter or search"
        return "no tasks yet: submit some with `dtask submit FILE`"

    def columns(self, cols: int, ids: list[str]) -> list[Column]:
        """The columns of the rows in view, sharing cols by their content (see widths.allocate)."""
        st = self.state
        tasks = [st.tasks[i] for i in ids]
        return shared_columns(*task_columns(tasks, st.clock(), st.queue.paused, st.elapsed), cols)

    def row_attr(self, key: str) -> str:
        return "row"

    def cells(self, key: str, columns: list[Column]) -> list[Markup]:
        st = self.state
        t = st.tasks[key]
        attr = STATE_ATTR.get(t.state, "row")
        out: list[Markup] = []
        for c in columns:
            if c.key == "id":
                out.append([(attr, t.id)])
            elif c.key == "name":
                out.append([(attr, t.name)])
            elif c.key == "state":
                if t.state is TaskState.RUNNING and t.stale_since is not None:  # no live bar, no frozen ETA
                    out.append([("conn_warn", fit(f" {stale_note(t.stale_since, st.clock())}", c.width))])
                elif t.state is TaskState.RUNNING:
                    out.append(progress_bar(t.progress, c.width))
                else:
                    out.append([(attr, state_note(t, st.queue.paused))])
            elif c.key == "executor":
                out.append([(attr, t.executor or "-")])
            elif c.key == "dispatched":
                out.append([(attr, clock(t.dispatched_at, st.clock()))])
            elif c.key == "finished":
                out.append([(attr, clock(t.finished_at, st.clock()))])
            elif c.key == "duration":
                out.append([(attr, duration(st.elapsed(t)))])
            elif c.key == "attempts":
                out.append([(attr, str(len(t.attempts)))])
            else:
                out.append([(attr, usage_cell(t, c.key))])
        return out

    def header(self, columns: list[Column], cols: int, total: int) -> Markup:
        st = self.state
        arrow = "↓" if st.reverse else "↑"
        titles = []
        for c in columns:
            title = c.heading(c.width - (c.key == st.sort)) + (arrow if c.key == st.sort else "")
            titles.append(fit(title, c.width, c.align))
        return [("header", fit(" ".join(titles), cols))]


EXIT_PREFIX = re.compile(r"^exit code (-?\d+):\s*")


def state_note(t: Task, paused: bool) -> str:
    """The state, with why when it helps: the error's first line, waiting on dependencies, paused."""
    if t.state in (TaskState.FAILED, TaskState.LOST) and t.error:
        first = EXIT_PREFIX.sub(r"exit \1: ", t.error.strip().splitlines()[0])
        return f"{t.state.value}: {first}"
    if t.state is TaskState.PENDING:
        if paused:
            return "pending (paused)"
        if t.spec.depends_on:
            return "pending (after " + ", ".join(t.spec.depends_on) + ")"
    return t.state.value


FILTER_LABELS = {
    Filter.ALL: "All",
    Filter.PENDING: "Pending",
    Filter.RUNNING: "Running",
    Filter.SUCCEEDED: "Succeeded",
    Filter.FAILED: "Failed",
    Filter.CANCELLED: "Cancelled",
}


SHORT_LABELS = {
    Filter.ALL: "All",
    Filter.PENDING: "Pend",
    Filter.RUNNING: "Run",
    Filter.SUCCEEDED: "OK",
    Filter.FAILED: "Fail",
    Filter.CANCELLED: "Canc",
}


TINY_LABELS = {f: label[0] for f, label in FILTER_LABELS.items()}


class FilterBar(LineBar):
    """State filters with their counts, the search text and the sort order."""

    def __init__(self, state: TuiState):
        super().__init__()
        self.state = state

    def line(self, cols: int) -> Markup:
        """The longest variant that fits: whole labels, short ones, without the sort, one letter; when none
        fits, the pieces that fit whole (a tab is never cut in the middle)."""
        variants = [(FILTER_LABELS, True), (SHORT_LABELS, True), (SHORT_LABELS, False), (TINY_LABELS, False)]
        for labels, with_sort in variants:
            out = self._line(labels, with_sort)
            if sum(len(t) for _, t in out) <= cols:
                break
        else:
            if self.state.paged and out[-1][1].startswith("  row"):  # the row number first
                out = [("footer", out[-1][1][1:] + " "), *out[:-1]]
            kept: Markup = []
            for attr, text in out:
                if sum(len(t) for _, t in kept) + len(text) <= cols:
                    kept.append((attr, text))
            out = kept
        used = sum(len(t) for _, t in out)
        if used < cols:
            out.append(("footer", " " * (cols - used)))
        return out

    def _line(self, labels: dict[Filter, str], with_sort: bool) -> Markup:
        """The tabs, the search, the sort (unless left out to make room) and the focused row's number."""
        st = self.state
        counts = st.filter_counts()
        out: Markup = []
        for i, f in enumerate(Filter, start=1):
            attr = "tab_active" if f is st.task_filter else "tab"
            label = (
                SHORT_LABELS[f] if labels is TINY_LABELS and f is st.task_filter else labels[f]
            )  # the active: a word
            out.append((attr, f" {i} {label} {counts[f]} "))
            out.append(("footer", " "))
        if st.search:
            out.append(("key", f" /{st.search} "))
        if with_sort:
            out.append(("footer", f" sort: {st.sort} {'↓' if st.reverse else '↑'}"))
        if st.view():
            out.append(("footer", f"  row {st.first_row() + st.focus_index() + 1}/{st.view_total()}"))
        return out
