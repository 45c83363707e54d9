"""Full-screen charts of live metrics: every metric of one task, or one metric of every task of its sweep."""

from __future__ import annotations

import re
import statistics

from dtask_common.models import Task

from dtask_tui.chart import Line, legend, render
from dtask_tui.format import fit
from dtask_tui.live_metrics import sweep_name
from dtask_tui.state import Chart, TuiState
from dtask_tui.widgets.base import LinesBox, Markup

CHART_MIN_ROWS = 8  # a title, at least 6 rows of plot, the time axis


def _natural(text: str) -> tuple[object, ...]:
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", text))


def _line(t: Task, st: TuiState, name: str, label: str) -> Line | None:
    points = st.metrics.of(t).series(name)
    if not points:
        return None
    cur = t.current
    start = cur.dispatched_at if cur is not None and cur.dispatched_at is not None else points[0].at
    start = min(start, points[0].at)
    return Line(label, [(p.at - start, float(p.value)) for p in points])


def sweep_members(st: TuiState, t: Task) -> list[Task]:
    """The listed tasks of t's sweep (sharing its matrix base name), by id."""
    base = sweep_name(t.name)
    if not base:
        return [t]
    return sorted((x for x in st.tasks.values() if sweep_name(x.name) == base), key=lambda x: _natural(x.id))


def metric_names(st: TuiState) -> list[str]:
    """The metrics the open chart view can show, in order of first appearance."""
    t = st.tasks.get(st.chart_task or "")
    if t is None:
        return []
    if st.chart is Chart.SWEEP:
        names: dict[str, None] = {}
        for m in sweep_members(st, t):
            names.update(dict.fromkeys(st.metrics.of(m).names()))
        return list(names)
    return st.metrics.of(t).names()


def diverging(lines: list[Line]) -> int | None:
    """The line whose last value is furthest from the others' median (with at least 3 lines), else None."""
    if len(lines) < 3:
        return None
    last = [ln.points[-1][1] for ln in lines]
    mid = statistics.median(last)
    spread = [abs(v - mid) for v in last]
    worst = max(range(len(lines)), key=spread.__getitem__)
    return worst if spread[worst] > 0 else None


def task_charts(st: TuiState, t: Task, cols: int, rows: int) -> list[Markup]:
    names = metric_names(st)
    cur = t.current
    head = f" Metrics of {t.name} ({t.id}) — {t.state.value}" + (f" — attempt {cur.number}" if cur else "")
    if not names:
        return [[("header", fit(head, cols))], [("dim", fit(" (no metrics reported yet)", cols))]]
    per = max(1, min(len(names), (rows - 1) // CHART_MIN_ROWS))
    first = max(0, min(st.chart_metric, len(names) - per))
    shown = names[first : first + per]
    more = f" — {first + 1}-{first + len(shown)} of {len(names)} ([ ] for more)" if per < len(names) else ""
    out: list[Markup] = [[("header", fit(head + more, cols))]]
    height = (rows - 1) // len(shown)
    for name in shown:
        line = _line(t, st, name, name)
        last = f" = {line.points[-1][1]:.6g}" if line else ""
        out += render([line] if line else [], cols, height, title=f" {name}{last}")
    return out[:rows]


def sweep_chart(st: TuiState, t: Task, cols: int, rows: int) -> list[Markup]:
    names = metric_names(st)
    base = sweep_name(t.name)
    members = sweep_members(st, t)
    if not names:
        head = f" Sweep {base} — {len(members)} tasks"
        return [[("header", fit(head, cols))], [("dim", fit(" (no metrics reported yet)", cols))]]
    name = names[min(st.chart_metric, len(names) - 1)]
    lines = [ln for m in members if (ln := _line(m, st, name, m.name)) is not None]
    worst = diverging(lines)
    head = f" Sweep {base}: {name} of {len(lines)} of {len(members)} tasks — metric {names.index(name) + 1} of "
    head += f"{len(names)} ([ ] for others)"
    keys = min(len(lines), max(2, rows // 4))
    out: list[Markup] = [[("header", fit(head, cols))]]
    note = f" — {lines[worst].label} diverges" if worst is not None else ""
    out += render(lines, cols, rows - 1 - keys, title=f" {name}{note}", highlight=worst)
    out += legend(lines, cols, keys, highlight=worst)
    return out[:rows]


def chart_lines(st: TuiState, cols: int, rows: int) -> list[Markup]:
    """The open chart view, exactly as drawn (a pure function of the state and the size)."""
    t = st.tasks.get(st.chart_task or "")
    if t is None:
        return [[("dim", fit(" (the task is no longer listed)", cols))]]
    if st.chart is Chart.SWEEP:
        return sweep_chart(st, t, cols, rows)
    return task_charts(st, t, cols, rows)


class ChartsView(LinesBox):
    """The chart view the state has open."""

    def __init__(self, state: TuiState):
        super().__init__()
        self.state = state

    def lines(self, cols: int, rows: int) -> list[Markup]:
        return chart_lines(self.state, cols, rows)
