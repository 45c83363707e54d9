"""A table that draws only the rows in view, around the focused row of the state."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import urwid

from dtask_tui.format import cells, cut, fit, shown
from dtask_tui.state import TuiState
from dtask_tui.widgets.base import Markup, to_canvas
from dtask_tui.widgets.palette import focus
from dtask_tui.widths import Want, allocate

WHEEL_ROWS = 3
ESSENTIAL = 9  # columns of this priority or more are never dropped


@dataclass(frozen=True, slots=True)
class Column:
    """One table column: key, title, width, alignment, and priority (lowest dropped first)."""

    key: str
    title: str
    width: int
    align: str = "left"
    priority: int = 0
    flex: bool = False
    short: str = ""  # the title when the whole one does not fit

    def heading(self, width: int) -> str:
        """The title that fits width: the whole one, else the short one."""
        return self.short if self.short and len(self.title) > width else self.title


def shared_columns(columns: list[Column], wants: list[Want], cols: int) -> list[Column]:
    """The columns the width allocator keeps, in their order, each as wide as it gives."""
    widths = allocate(wants, cols)
    return [replace(c, width=widths[c.key]) for c in columns if c.key in widths]


def layout_columns(columns: list[Column], cols: int, min_flex: int = 12) -> list[Column]:
    """Columns that fit cols characters: drop low-priority ones, then give the rest to the flex column."""
    chosen = list(columns)
    while True:
        fixed = sum(c.width for c in chosen if not c.flex) + len(chosen) - 1
        flex = [c for c in chosen if c.flex]
        room = cols - fixed
        if room >= min_flex * len(flex) or len(chosen) <= 2:
            break
        droppable = [c for c in chosen if not c.flex and c.priority < ESSENTIAL]
        if not droppable:
            break
        chosen.remove(min(droppable, key=lambda c: c.priority))
    if flex:
        share = max(1, room // len(flex))
        chosen = [Column(c.key, c.title, share, c.align, c.priority, True) if c.flex else c for c in chosen]
    return chosen


class TableView(urwid.Widget):
    """Header plus the visible rows only; the focused row is the state's focus."""

    _sizing = frozenset([urwid.BOX])
    _selectable = True
    no_cache = ["render"]

    def __init__(self, state: TuiState):
        super().__init__()
        self.state = state
        self.top = 0
        self.top_key: str | None = None  # the row drawn first, to keep it there when rows join or leave above
        self.page = 10
        self.on_select: Callable[[int], None] | None = None  # a click on row index
        self.on_scroll: Callable[[int], None] | None = None  # the wheel: rows to move

    # subclasses -----------------------------------------------------------------------------
    def row_ids(self) -> list[str]:
        raise NotImplementedError

    def columns(self, cols: int, ids: list[str]) -> list[Column]:
        raise NotImplementedError

    def cells(self, key: str, columns: list[Column]) -> list[Markup]:
        """Markup for each column of the row key (each piece fitted to its column by the table)."""
        raise NotImplementedError

    def row_attr(self, key: str) -> str:
        return "row"

    def empty_text(self) -> str:
        return "nothing to show"

    def anchor_position(self, key: str) -> int | None:
        """Where the row drawn first last time is now, to draw from it again (None: keep the index)."""
        return None

    # mouse ----------------------------------------------------------------------------------
    def mouse_event(  # type: ignore[override]
        self,
        size: tuple[int, int],
        event: str,
        button: int,
        col: int,
        row: int,
        focus: bool,
    ) -> bool:
        """Click focuses a row; the wheel moves the focus three rows."""
        if event != "mouse press":
            return False
        if button == 1 and row >= 1:
            index = self.top + row - 1
            if index < len(self.row_ids()) and self.on_select is not None:
                self.on_select(index)
            return True
        if button in (4, 5) and self.on_scroll is not None:
            self.on_scroll(-WHEEL_ROWS if button == 4 else WHEEL_ROWS)
            return True
        return False

    # drawing --------------------------------------------------------------------------------
    def render(self, size: tuple[int, int], focus: bool = False) -> urwid.Canvas:  # type: ignore[override]
        cols, rows = size
        return to_canvas(self.lines(cols, rows), cols, rows)

    def lines(self, cols: int, rows: int) -> list[Markup]:
        ids = self.row_ids()
        body = max(0, rows - 1)
        self.page = max(1, body - 1)
        f = self.state.focus_index() if ids else 0
        if self.top_key is not None and (anchored := self.anchor_position(self.top_key)) is not None:
            self.top = anchored
        if f < self.top:
            self.top = f
        elif f >= self.top + body:
            self.top = f - body + 1
        self.top = max(0, min(self.top, max(0, len(ids) - body)))
        visible = ids[self.top : self.top + body]
        self.top_key = visible[0] if visible else None
        columns = self.columns(cols, visible)
        out: list[Markup] = [self.header(columns, cols, len(ids))]
        if not ids:
            out.append([("dim", fit(f"  {self.empty_text()}", cols))])
        for i, key in enumerate(visible, start=self.top):
            out.append(self.row(key, columns, cols, i == f))
        return out

    def header(self, columns: list[Column], cols: int, total: int) -> Markup:
        text = " ".join(fit(c.title, c.width, c.align) for c in columns)
        return [("header", fit(text, cols))]

    def row(self, key: str, columns: list[Column], cols: int, focused: bool) -> Markup:
        base = self.row_attr(key)
        line: Markup = []
        used = 0
        for i, (col, cell) in enumerate(zip(columns, self.cells(key, columns), strict=True)):
            if i:
                line.append((base, " "))
                used += 1
            width = col.width
            cell = [(a, shown(t)) for a, t in cell]  # measured as drawn
            text_len = sum(cells(t) for _, t in cell)
            if text_len > width:
                cell = _clip_markup(cell, width)
                text_len = sum(cells(t) for _, t in cell)  # a wide character may leave one cell
            pad = " " * (width - text_len)
            if col.align == "right":
                line.append((base, pad))
                line.extend((a or base, t) for a, t in cell)
            else:
                line.extend((a or base, t) for a, t in cell)
                line.append((base, pad))
            used += width
        if used < cols:
            line.append((base, " " * (cols - used)))
        if focused:
            line = [(focus(a), t) for a, t in line]
        return line


def _clip_markup(cell: Markup, width: int) -> Markup:
    out: Markup = []
    left = width
    for attr, text in cell:
        if left <= 0:
            break
        if cells(text) > left:
            text = cut(text, left - 1) + "…" if left > 1 else cut(text, left)
        out.append((attr, text))
        left -= cells(text)
    return out
