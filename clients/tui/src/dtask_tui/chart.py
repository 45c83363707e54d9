"""Line charts of metric series in braille dots, as lines of markup: a pure function of the series and the size."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from dtask_tui.format import clip, duration, fit

Markup = list[tuple[str, str]]

# The colours the lines of one chart take in turn (palette entries "chart0".."chart5").
LINE_ATTRS = ("chart0", "chart1", "chart2", "chart3", "chart4", "chart5")
BRAILLE = 0x2800
# The dot of each (row, column) of a braille cell (2 columns x 4 rows).
_DOTS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))
MIN_PLOT_ROWS = 2
MIN_PLOT_COLS = 8


@dataclass(frozen=True, slots=True)
class Line:
    """One line of a chart: its label and its points (x: seconds since the start, y: the value)."""

    label: str
    points: Sequence[tuple[float, float]]


def number(v: float) -> str:
    """A value as an axis shows it: at most 4 significant digits ('0.2134', '1.2e+05', '42')."""
    if v == int(v) and abs(v) < 1e6:
        return str(int(v))
    return f"{v:.4g}"


def _bounds(lines: Sequence[Line]) -> tuple[float, float, float, float] | None:
    xs = [x for ln in lines for x, _ in ln.points if math.isfinite(x)]
    ys = [y for ln in lines for _, y in ln.points if math.isfinite(y)]
    if not xs or not ys:
        return None
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    if y0 == y1:
        pad = abs(y0) * 0.1 or 1.0
        y0, y1 = y0 - pad, y1 + pad
    if x0 == x1:
        x1 = x0 + 1.0
    return x0, x1, y0, y1


def _segment(a: tuple[int, int], b: tuple[int, int]) -> list[tuple[int, int]]:
    """The dots from a to b (Bresenham), both ends included."""
    (x0, y0), (x1, y1) = a, b
    dx, dy = abs(x1 - x0), -abs(y1 - y0)
    sx, sy = (1 if x1 > x0 else -1), (1 if y1 > y0 else -1)
    err, out = dx + dy, []
    for _ in range(dx - dy + 1):
        out.append((x0, y0))
        if (x0, y0) == (x1, y1):
            break
        e2 = 2 * err
        if e2 >= dy:
            err += dy
            x0 += sx
        if e2 <= dx:
            err += dx
            y0 += sy
    return out


def render(
    lines: Sequence[Line], width: int, height: int, *, title: str = "", highlight: int | None = None
) -> list[Markup]:
    """A chart exactly `height` lines of `width` cells: a title, the plot with the y axis labelled at its top and
    bottom, the x axis (time since the start). Each line has its colour; `highlight` (an index) is drawn last,
    over the others. Labels are made safe for a terminal (safetext)."""
    if width <= 0 or height <= 0:
        return []
    out: list[Markup] = [[("title", fit(title, width))]] if title else []
    plot_rows = height - len(out) - 1
    bounds = _bounds(lines)
    if bounds is None or plot_rows < MIN_PLOT_ROWS:
        out.append([("dim", fit(" (no values yet)" if bounds is None else " (too small for a chart)", width))])
        return (out + [[("row", " " * width)]] * height)[:height]
    x0, x1, y0, y1 = bounds
    top, bottom = number(y1), number(y0)
    axis_w = max(len(top), len(bottom), len(number((y0 + y1) / 2))) + 1
    cols = width - axis_w - 1
    if cols < MIN_PLOT_COLS:
        out.append([("dim", fit(" (too narrow for a chart)", width))])
        return (out + [[("row", " " * width)]] * height)[:height]
    px_w, px_h = cols * 2, plot_rows * 4
    cells = [[0] * cols for _ in range(plot_rows)]
    owner: list[list[int | None]] = [[None] * cols for _ in range(plot_rows)]
    order = [i for i in range(len(lines)) if i != highlight] + ([highlight] if highlight is not None else [])
    for i in order:
        dots = [
            (
                round((x - x0) / (x1 - x0) * (px_w - 1)),
                round((y1 - y) / (y1 - y0) * (px_h - 1)),
            )
            for x, y in lines[i].points
            if math.isfinite(x) and math.isfinite(y)
        ]
        path = (
            [dots[0]] if len(dots) == 1 else [d for a, b in zip(dots, dots[1:], strict=False) for d in _segment(a, b)]
        )
        for px, py in path:
            r, c = py // 4, px // 2
            cells[r][c] |= _DOTS[py % 4][px % 2]
            owner[r][c] = i
    mid_row = plot_rows // 2 if plot_rows >= 5 else None
    for r in range(plot_rows):
        label = top if r == 0 else bottom if r == plot_rows - 1 else number((y0 + y1) / 2) if r == mid_row else ""
        line: Markup = [("label", label.rjust(axis_w - 1) + " "), ("dim", "┤" if label else "│")]
        for c in range(cols):
            ch = chr(BRAILLE + cells[r][c]) if cells[r][c] else " "
            who = owner[r][c]
            attr = LINE_ATTRS[who % len(LINE_ATTRS)] if who is not None else "row"
            if line and line[-1][0] == attr:
                line[-1] = (attr, line[-1][1] + ch)
            else:
                line.append((attr, ch))
        out.append(line)
    start, end = "0s", duration(x1 - x0)
    gap = max(1, cols - len(start) - len(end))
    out.append([("dim", " " * axis_w + "└" + fit(start + " " * gap + end, cols))])
    return out[:height]


def legend(lines: Sequence[Line], width: int, rows: int, *, highlight: int | None = None) -> list[Markup]:
    """Up to `rows` lines naming each line in its colour with its last value (the highlighted one marked)."""
    out: list[Markup] = []
    for i, ln in enumerate(lines[:rows]):
        last = number(ln.points[-1][1]) if ln.points else "-"
        mark = "▶ " if i == highlight else "  "
        text = f"{mark}{clip(ln.label, max(1, width - len(last) - 6))}  {last}"
        out.append([(LINE_ATTRS[i % len(LINE_ATTRS)], "━━ "), ("row", fit(text, max(0, width - 3)))])
    return out


def to_text(lines: list[Markup]) -> str:
    """The chart's characters without colours (for tests and logs)."""
    return "\n".join("".join(text for _, text in line) for line in lines)
