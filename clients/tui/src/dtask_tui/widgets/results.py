"""The Results view: the selected task's sweep as a table of parameters and metrics, the best of each marked."""

from __future__ import annotations

from collections.abc import Mapping

from dtask_common.results_table import Cell, Column, ResultsTable, cell_text, right_aligned
from dtask_common.safetext import cells as width_of

from dtask_tui.format import fit, shown
from dtask_tui.state import TuiState
from dtask_tui.widgets.base import LinesBox, Markup

#: Written after the best value of a metric column (as `dtask results` does).
BEST_MARK = "*"
GAP = "  "


class ResultsView(LinesBox):
    """A title, the column names, then the rows from view.top; drawn from the state at every render."""

    def __init__(self, state: TuiState):
        super().__init__()
        self.state = state
        self.page = 10

    def lines(self, cols: int, rows: int) -> list[Markup]:
        view = self.state.results
        if view is None:
            return []
        table = view.table(self.state.tasks.values())
        body = max(1, rows - 2)
        self.page = body
        top = max(0, min(view.top, max(0, len(table.rows) - body)))
        order = (
            f"sorted by {view.sort} {'↓' if view.desc else '↑'}" if view.sort in table.names else "in submission order"
        )
        best = "; * best: highest, lowest for loss/error/time" if table.best else ""
        head = f" Results of {view.title} — {len(table.rows)} tasks — {order}{best}"
        out: list[Markup] = [[("header", fit(head, cols))]]
        cells = [[_text(table, row, c) for c in table.columns] for row in table.rows]
        widths = [max([width_of(c.name) + 1, *(width_of(r[i]) for r in cells)]) for i, c in enumerate(table.columns)]
        right = [right_aligned(table, c) for c in table.columns]
        names: Markup = []
        for c, w, r in zip(table.columns, widths, right, strict=True):
            label = c.name + ("↓" if view.desc else "↑") if c.name == view.sort else c.name
            names += [("title", fit(shown(label), w, "right" if r else "left")), ("row", GAP)]
        out.append(names)
        for row, line in list(zip(table.rows, cells, strict=True))[top : top + body]:
            markup: Markup = []
            for c, text, w, r in zip(table.columns, line, widths, right, strict=True):
                attr = "best" if table.is_best(row, c.name) else str(row.get("state")) if c.kind == "state" else "row"
                markup += [(attr, fit(text, w, "right" if r else "left")), ("row", GAP)]
            out.append(markup)
        if not table.rows:
            out.append([("dim", " (no tasks of this sweep are listed)")])
        elif not any(c.kind == "metric" for c in table.columns):
            out.append([("dim", " (no results yet: metrics appear as the tasks finish)")])
        return out


def _text(table: ResultsTable, row: Mapping[str, Cell], column: Column) -> str:
    text = shown(cell_text(column, row.get(column.name)))
    return text + BEST_MARK if table.is_best(row, column.name) else text
