"""The results table of a sweep: a row per task, a column per parameter and per result metric, sorting, and
the best value of each metric column; pure (no I/O).

The best value of a metric column is the highest, unless the metric's name contains "loss", "error" or "time"
(then the lowest); a caller's minimize / maximize names override that. A column is marked only when at least
two rows hold a number in it and not all the same.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from dtask_common.humanize import duration
from dtask_common.models import Task
from dtask_common.models.params import same
from dtask_common.suggest import did_you_mean

Cell = str | int | float | bool | None
ColumnKind = Literal["id", "name", "param", "metric", "state", "duration"]

#: Columns every row has, before the parameters and after the metrics.
LEAD = ("id", "name")
TAIL = ("state", "duration_s")
#: Shown unless --cols says otherwise (the name repeats the parameters).
HIDDEN_BY_DEFAULT = frozenset({"name"})
#: A metric whose name holds one of these is better when lower.
LOWER_IS_BETTER = ("loss", "error", "time")
#: Prefix of a metric whose name is already a parameter's or a fixed column's.
RESULT_PREFIX = "result."


class UnknownColumn(ValueError):
    """A column asked for (to sort by, show, or rank) that no row has."""


@dataclass(frozen=True, slots=True)
class Column:
    """One column: its name (the key in every row) and what it holds."""

    name: str
    kind: ColumnKind


@dataclass(frozen=True, slots=True)
class ResultsTable:
    """Columns to show, rows in order (each maps every known column name to its value, None when missing), and
    the best value of each ranked column."""

    columns: tuple[Column, ...]
    rows: tuple[Mapping[str, Cell], ...]
    best: Mapping[str, float] = field(default_factory=dict)
    lower_better: Mapping[str, bool] = field(default_factory=dict)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def is_best(self, row: Mapping[str, Cell], column: str) -> bool:
        """Whether row holds the best value of column."""
        best = self.best.get(column)
        value = row.get(column)
        return best is not None and _number(value) and value == best

    def plain_rows(self) -> list[dict[str, Cell]]:
        """The rows as plain dicts of the shown columns, in order (what pandas.DataFrame(rows) takes)."""
        return [{c.name: row.get(c.name) for c in self.columns} for row in self.rows]


def right_aligned(table: ResultsTable, column: Column) -> bool:
    """Whether a column aligns to the right: ids, durations and columns of numbers only."""
    if column.kind in ("id", "duration"):
        return True
    values = [row.get(column.name) for row in table.rows]
    return any(v is not None for v in values) and all(
        v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in values
    )


def lower_is_better(name: str) -> bool:
    """Whether a lower value of this metric is better: its name says loss, error or time."""
    low = name.lower()
    return any(word in low for word in LOWER_IS_BETTER)


def _number(value: object) -> bool:
    return (type(value) is int or type(value) is float) and math.isfinite(value)  # type: ignore[arg-type]


def metrics_of(result: Mapping[str, object] | None) -> dict[str, Cell]:
    """The scalar values of a result, nested objects flattened with dots (`eval.acc`); lists are left out."""
    out: dict[str, Cell] = {}

    def walk(prefix: str, d: Mapping[str, object]) -> None:
        for k, v in d.items():
            key = f"{prefix}{k}"
            if isinstance(v, Mapping):
                walk(key + ".", v)
            elif isinstance(v, (str, int, float, bool)):
                out[key] = v

    if result:
        walk("", result)
    return out


def _metric_items(task: Task) -> list[tuple[str, Cell]]:
    """(column, value) of a task's metrics: a metric that repeats a parameter with its value is left out, one
    named like a parameter or a fixed column otherwise is prefixed with `result.`."""
    params = task.spec.params
    taken = set(LEAD) | set(params) | set(TAIL)
    out: list[tuple[str, Cell]] = []
    for k, v in metrics_of(task.result).items():
        if k in params and same(params[k], v):  # type: ignore[arg-type]
            continue
        out.append((RESULT_PREFIX + k if k in taken else k, v))
    return out


def row_of(task: Task) -> dict[str, Cell]:
    """A task's row: id, name, its parameters, its metrics, state, duration_s."""
    row: dict[str, Cell] = {"id": task.id, "name": task.name}
    row.update(task.spec.params)
    row.update(_metric_items(task))
    row["state"] = task.state.value
    row["duration_s"] = task.duration_s
    return row


def columns_of(tasks: Sequence[Task]) -> list[Column]:
    """Every column of these tasks' rows: id, name, parameters in the order first seen, metrics by name, state,
    duration_s."""
    params: dict[str, None] = {}
    metrics: dict[str, None] = {}
    for t in tasks:
        params.update(dict.fromkeys(t.spec.params))
    for t in tasks:
        metrics.update(dict.fromkeys(k for k, _ in _metric_items(t) if k not in params))
    metrics = dict.fromkeys(sorted(metrics))  # by name: a result object's key order does not survive the wire
    return [
        Column("id", "id"),
        Column("name", "name"),
        *(Column(k, "param") for k in params),
        *(Column(k, "metric") for k in metrics),
        Column("state", "state"),
        Column("duration_s", "duration"),
    ]


def _check(names: Iterable[str], known: Sequence[str], what: str) -> None:
    for name in names:
        if name not in known:
            hint = did_you_mean(name, known)
            raise UnknownColumn(f"{what}: no column {name!r}{hint}; the columns are {', '.join(known)}")


def _sort_key(value: Cell) -> tuple[int, float | str]:
    if isinstance(value, (int, float)):  # bool too: false before true
        return (0, float(value))
    return (1, str(value))


def sort_rows(rows: Sequence[Mapping[str, Cell]], column: str, desc: bool = False) -> list[Mapping[str, Cell]]:
    """Rows ordered by column (numbers by value, before text); rows missing it come last either way."""
    present = [r for r in rows if r.get(column) is not None and not _nan(r.get(column))]
    missing = [r for r in rows if r.get(column) is None or _nan(r.get(column))]
    return sorted(present, key=lambda r: _sort_key(r.get(column)), reverse=desc) + missing


def _id_order(row: Mapping[str, Cell]) -> tuple[int, str]:
    """Submission order: ids are decimal numbers (compared by length, then text)."""
    text = str(row["id"])
    return (len(text), text)


def _nan(value: Cell) -> bool:
    return isinstance(value, float) and math.isnan(value)


def build(
    tasks: Sequence[Task],
    *,
    cols: Sequence[str] | None = None,
    sort: str | None = None,
    desc: bool = False,
    minimize: Sequence[str] = (),
    maximize: Sequence[str] = (),
) -> ResultsTable:
    """The table of these tasks (in id order unless sort names a column); UnknownColumn for a column no task has."""
    every = columns_of(tasks)
    known = [c.name for c in every]
    _check(cols or (), known, "--cols")
    _check([sort] if sort else [], known, "--sort")
    _check(minimize, known, "--min")
    _check(maximize, known, "--max")
    both = set(minimize) & set(maximize)
    if both:
        raise UnknownColumn(f"--min and --max both name {sorted(both)[0]!r}; give one of them")
    by_name = {c.name: c for c in every}
    shown = [by_name[n] for n in dict.fromkeys(cols)] if cols else [c for c in every if c.name not in HIDDEN_BY_DEFAULT]
    rows: list[Mapping[str, Cell]] = sorted((row_of(t) for t in tasks), key=_id_order)
    if sort:
        rows = sort_rows(rows, sort, desc)
    ranked = [c.name for c in shown if c.kind == "metric" or c.name in minimize or c.name in maximize]
    best: dict[str, float] = {}
    lower: dict[str, bool] = {}
    for name in ranked:
        low = name in minimize or (name not in maximize and lower_is_better(name))
        values = [float(v) for r in rows if _number(v := r.get(name))]  # type: ignore[arg-type]
        lower[name] = low
        if len(values) >= 2 and min(values) != max(values):
            best[name] = min(values) if low else max(values)
    return ResultsTable(tuple(shown), tuple(rows), best, lower)


def cell_text(column: Column, value: Cell) -> str:
    """A value as the terminal table shows it: blank when missing, a duration humanized, a whole float with .0
    (an int metric stays visibly an int)."""
    if value is None:
        return ""
    if column.kind == "duration" and isinstance(value, (int, float)):
        return duration(value)
    return plain_text(value)


def plain_text(value: Cell) -> str:
    """A value as CSV writes it: true/false, 3, 0.25, 2.0, text; missing is empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        text = format(value, ".6g")
        return text + ".0" if text.lstrip("-").isdigit() else text
    return str(value)


def csv_text(table: ResultsTable) -> str:
    """The table as CSV: a header of column names, then the rows (floats in full precision)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(table.names)
    for row in table.rows:
        w.writerow(
            [
                "" if (v := row.get(n)) is None else repr(v) if isinstance(v, float) else plain_text(v)
                for n in table.names
            ]
        )
    return buf.getvalue()
