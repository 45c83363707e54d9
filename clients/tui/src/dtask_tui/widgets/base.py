"""Base widgets that draw lines of markup computed from state at render time (nothing cached)."""

from __future__ import annotations

from typing import Any

import urwid
from dtask_common.safetext import shown

Markup = list[tuple[str, str]]


def to_canvas(lines: list[Markup], cols: int, rows: int | None = None) -> urwid.Canvas:
    """A canvas of exactly cols × rows (rows defaults to len(lines)) from lines of (attr, text)."""
    if rows is not None:
        lines = lines[:rows]
    markup: list[Any] = []
    for i, line in enumerate(lines):
        if i:
            markup.append("\n")
        markup.extend((attr, shown(text)) for attr, text in line if text)  # never a raw control character
    if not lines:
        markup = [""]
    canvas = urwid.CompositeCanvas(urwid.Text(markup, wrap="clip").render((cols,)))
    if rows is not None and canvas.rows() < rows:
        canvas.pad_trim_top_bottom(0, rows - canvas.rows())
    return canvas


class LinesBox(urwid.Widget):
    """A box widget whose content is computed by lines(cols, rows) at every render."""

    _sizing = frozenset([urwid.BOX])
    no_cache = ["render"]

    def lines(self, cols: int, rows: int) -> list[Markup]:
        raise NotImplementedError

    def render(self, size: tuple[int, int], focus: bool = False) -> urwid.Canvas:  # type: ignore[override]
        cols, rows = size
        return to_canvas(self.lines(cols, rows), cols, rows)


class LineBar(urwid.Widget):
    """A one-row flow widget whose content is computed by line(cols) at every render."""

    _sizing = frozenset([urwid.FLOW])
    no_cache = ["render", "rows"]

    def line(self, cols: int) -> Markup:
        raise NotImplementedError

    def rows(self, size: tuple[int], focus: bool = False) -> int:  # type: ignore[override]
        return 1

    def render(self, size: tuple[int], focus: bool = False) -> urwid.Canvas:  # type: ignore[override]
        (cols,) = size
        return to_canvas([self.line(cols)], cols, 1)


def pad_line(line: Markup, cols: int, attr: str) -> Markup:
    """line padded with attr-coloured spaces to cols characters."""
    used = sum(len(shown(t)) for _, t in line)
    if used < cols:
        line = [*line, (attr, " " * (cols - used))]
    return line
