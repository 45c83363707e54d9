"""Pure text formatting for the TUI: bars, sparklines, charts, durations, times, sizes.

Text from the controller is shown with safetext.shown before it is measured (clip, fit, cells)."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

from dtask_common.humanize import attempt_usage as attempt_usage
from dtask_common.humanize import clock as clock  # shared with the CLI
from dtask_common.humanize import duration as duration
from dtask_common.humanize import size as size
from dtask_common.models import Progress
from dtask_common.safetext import cells as cells
from dtask_common.safetext import cut as cut
from dtask_common.safetext import shown as shown

BLOCKS = "▁▂▃▄▅▆▇█"
CHART_CHARS = " ▁▂▃▄▅▆▇█"
EIGHTHS = " ▏▎▍▌▋▊▉█"


def clip(text: str, width: int) -> str:
    """Text (control and bidi characters escaped) cut to width cells, with an ellipsis when cut."""
    if width <= 0:
        return ""
    text = shown(text)
    if cells(text) <= width:
        return text
    return cut(text, width - 1) + "…" if width > 1 else cut(text, width)


def fit(text: str, width: int, align: str = "left") -> str:
    """Text clipped and padded to exactly width cells."""
    text = clip(text, width)
    pad = " " * (width - cells(text))
    return pad + text if align == "right" else text + pad


def pct(value: float | None, width: int = 0) -> str:
    """A percentage like '45%' ('-' when unknown)."""
    text = "-" if value is None else f"{value:.0f}%"
    return text.rjust(width) if width else text


def stamp(at: float | None) -> str:
    """A full local timestamp ('-' when unknown, '?' when no calendar can show it)."""
    if at is None:
        return "-"
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))
    except (OverflowError, ValueError, OSError):
        return "?"


def level(value: float | None, lo: float = 0.0, hi: float = 100.0) -> str:
    """One block character for value in lo..hi (space when unknown or nan)."""
    if value is None or math.isnan(value):
        return " "
    span = hi - lo or 1.0
    i = int((min(max(value, lo), hi) - lo) / span * (len(BLOCKS) - 1) + 0.5)
    return BLOCKS[i]


def sparkline(values: Sequence[float | None], width: int, lo: float = 0.0, hi: float = 100.0) -> str:
    """The last width values as one block character each, right-aligned."""
    if width <= 0:
        return ""
    tail = list(values)[-width:]
    return ("".join(level(v, lo, hi) for v in tail)).rjust(width)


def squeeze(values: Sequence[float], width: int) -> list[float]:
    """values averaged into at most width buckets (order kept)."""
    n = len(values)
    if n <= width or width <= 0:
        return list(values)
    out = []
    for i in range(width):
        a, b = i * n // width, (i + 1) * n // width
        chunk = values[a : max(b, a + 1)]
        out.append(sum(chunk) / len(chunk))
    return out


def core_bar(per_core: Sequence[float], width: int) -> str:
    """One character per core (▁..█); cores are averaged in groups when they exceed width."""
    return "".join(level(v) for v in squeeze(per_core, width))


def chart(values: Sequence[float | None], width: int, height: int, lo: float = 0.0, hi: float = 100.0) -> list[str]:
    """A bar chart height rows tall of the last width values, top row first."""
    if width <= 0 or height <= 0:
        return []
    tail: list[float | None] = list(values)[-width:]
    pad: list[float | None] = [None] * (width - len(tail))
    tail = pad + tail
    span = hi - lo or 1.0
    eighths = [
        0 if v is None or math.isnan(v) else int((min(max(v, lo), hi) - lo) / span * height * 8 + 0.5) for v in tail
    ]
    rows = []
    for r in range(height - 1, -1, -1):
        base = r * 8
        rows.append("".join(CHART_CHARS[min(8, max(0, e - base))] for e in eighths))
    return rows


def bar_cells(fraction: float | None, width: int) -> tuple[int, str]:
    """(full cells, partial character) of a horizontal bar width cells long at fraction."""
    if fraction is None or width <= 0:
        return 0, ""
    eighths = int(max(0.0, min(1.0, fraction)) * width * 8 + 0.5)
    full, part = divmod(eighths, 8)
    return full, (EIGHTHS[part] if part and full < width else "")


def meter(value: float | None, width: int) -> str:
    """A text meter '████▌    ' of a 0..100 value, width cells."""
    full, part = bar_cells(None if value is None else value / 100.0, width)
    return ("█" * full + part).ljust(width)


def progress_text(p: Progress | None, now: float | None = None) -> str:
    """'45/100 45% ETA 0:15' style summary of a progress report."""
    if p is None:
        return ""
    parts = []
    if p.epoch and p.epochs:
        overall = p.overall
        parts.append(f"epoch {p.epoch}/{p.epochs}" + (f" ({overall * 100:.0f}%)" if overall is not None else ""))
    if p.total:
        parts.append(f"{p.step}/{p.total}")
    elif p.step:
        parts.append(str(p.step))
    frac = p.fraction
    if frac is not None:
        parts.append(f"{frac * 100:.0f}%")
    if p.eta_s is not None:
        parts.append(f"ETA {duration(p.eta_s)}")
    return " ".join(parts)


def stale_note(since: float | None, now: float) -> str:
    """'stale 42s' for a running task whose executor is out of touch (its progress is that old), else ''."""
    return "" if since is None else f"stale {duration(max(0.0, now - since))}"


def progress_bar(p: Progress | None, width: int) -> list[tuple[str, str]]:
    """Markup pieces (attr, text) of a progress bar width wide with its summary drawn over it."""
    if width <= 0:
        return []
    frac = p.fraction if p is not None else None
    label = progress_text(p) or "running"
    text = fit(f" {label}", width)
    if frac is None:
        return [("bar_todo", text)]
    done = int(frac * width + 0.5)
    return [("bar_done", text[:done]), ("bar_todo", text[done:])]
