"""The results table of a sweep: columns, sorting with missing values last, the best of each metric, text."""

from __future__ import annotations

import csv
import io

import pytest
from dtask_common.models import Attempt, Task, TaskSpec, TaskState
from dtask_common.results_table import (
    Column,
    UnknownColumn,
    build,
    cell_text,
    csv_text,
    lower_is_better,
    plain_text,
    sort_rows,
)
from hypothesis import given
from hypothesis import strategies as st


def task(
    tid: int, params: dict[str, object], result: dict[str, object] | None, state: TaskState = TaskState.SUCCEEDED
) -> Task:
    name = "train[" + ",".join(f"{k}={v}" for k, v in params.items()) + "]"
    attempt = Attempt(str(tid), 1, "r1", dispatched_at=100.0, finished_at=100.0 + tid, state=state)
    return Task(str(tid), TaskSpec(name=name, shell="true", params=params), state, attempts=[attempt], result=result)  # type: ignore[arg-type]


SWEEP = [
    task(1, {"model": "mlp", "lr": 0.01}, {"epoch": 2, "eval_loss": 0.4, "eval_accuracy": 0.81}),
    task(2, {"model": "mlp", "lr": 0.1}, {"epoch": 2, "eval_loss": 0.2, "eval_accuracy": 0.93, "model": "mlp"}),
    task(3, {"model": "cnn", "lr": 0.1}, {"epoch": 2, "eval_loss": 0.1, "eval_accuracy": 0.97, "lr": 0.2}),
    task(4, {"model": "cnn", "lr": 0.5}, None, TaskState.FAILED),
]


def test_columns_parameters_in_order_then_metrics_by_name_then_state_and_duration() -> None:
    t = build(SWEEP)
    assert t.names == ("id", "model", "lr", "epoch", "eval_accuracy", "eval_loss", "result.lr", "state", "duration_s")
    assert [c.kind for c in t.columns][:4] == ["id", "param", "param", "metric"]
    # a metric repeating its parameter is left out; one that differs is kept under result.
    assert t.rows[1].get("result.model") is None and t.rows[2]["result.lr"] == 0.2
    assert t.plain_rows()[3] == {
        "id": "4", "model": "cnn", "lr": 0.5, "epoch": None, "eval_accuracy": None, "eval_loss": None,
        "result.lr": None, "state": "failed", "duration_s": 4.0,
    }  # fmt: skip


def test_best_is_highest_unless_the_name_says_loss_error_or_time() -> None:
    t = build(SWEEP)
    assert t.best == {"eval_accuracy": 0.97, "eval_loss": 0.1}  # epoch: all the same, result.lr: one value
    assert t.is_best(t.rows[2], "eval_accuracy") and t.is_best(t.rows[2], "eval_loss")
    assert not t.is_best(t.rows[3], "eval_accuracy")
    assert [n for n in ("acc", "train_loss", "Error_rate", "step_time", "f1") if lower_is_better(n)] == [
        "train_loss",
        "Error_rate",
        "step_time",
    ]
    flipped = build(SWEEP, minimize=["eval_accuracy"], maximize=["eval_loss"])
    assert flipped.best == {"eval_accuracy": 0.81, "eval_loss": 0.4}
    assert build(SWEEP, minimize=["duration_s"]).best["duration_s"] == 1.0  # any column can be ranked


def test_sort_cols_and_unknown_columns() -> None:
    t = build(SWEEP, sort="eval_accuracy", desc=True, cols=["model", "lr", "eval_accuracy"])
    assert t.names == ("model", "lr", "eval_accuracy")
    assert [r["id"] for r in t.rows] == ["3", "2", "1", "4"]  # missing last, even descending
    assert [r["id"] for r in build(SWEEP, sort="model").rows] == ["3", "4", "1", "2"]
    assert build(SWEEP, cols=["name"]).plain_rows()[0] == {"name": "train[model=mlp,lr=0.01]"}
    for kw, message in (
        ({"sort": "eval_acc"}, "--sort: no column 'eval_acc' (did you mean 'eval_accuracy'?)"),
        ({"cols": ["modle"]}, "--cols: no column 'modle'"),
        ({"minimize": ["x"]}, "--min: no column 'x'"),
        ({"minimize": ["lr"], "maximize": ["lr"]}, "--min and --max both name 'lr'"),
    ):
        with pytest.raises(UnknownColumn, match=message.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")):
            build(SWEEP, **kw)  # type: ignore[arg-type]


def test_an_empty_selection_has_the_fixed_columns() -> None:
    t = build([])
    assert t.names == ("id", "state", "duration_s") and t.rows == ()


def test_text_keeps_ints_ints_and_floats_floats() -> None:
    assert [plain_text(v) for v in (2, 2.0, 0.25, True, None, "cnn", 1e-7)] == [
        "2",
        "2.0",
        "0.25",
        "true",
        "",
        "cnn",
        "1e-07",
    ]
    assert cell_text(Column("duration_s", "duration"), 75.0) == "1:15"
    rows = list(csv.DictReader(io.StringIO(csv_text(build(SWEEP, cols=["id", "epoch", "eval_loss"])))))
    assert rows[0] == {"id": "1", "epoch": "2", "eval_loss": "0.4"} and rows[3] == {
        "id": "4",
        "epoch": "",
        "eval_loss": "",
    }


cell = st.one_of(
    st.none(),
    st.integers(-1000, 1000),
    st.floats(allow_nan=True, allow_infinity=False, width=32),
    st.text(max_size=3),
    st.booleans(),
)


@given(st.lists(cell, max_size=30), st.booleans())
def test_sorting_is_a_permutation_ordered_with_missing_last(values: list[object], desc: bool) -> None:
    rows = [{"id": str(i), "x": v} for i, v in enumerate(values)]
    out = sort_rows(rows, "x", desc)
    assert sorted(r["id"] for r in out) == sorted(r["id"] for r in rows)
    missing = [r["x"] is None or (isinstance(r["x"], float) and r["x"] != r["x"]) for r in out]
    assert missing == sorted(missing)  # every missing value after every present one
    numbers = [float(r["x"]) for r in out if isinstance(r["x"], (int, float)) and r["x"] == r["x"]]  # type: ignore[arg-type]
    assert numbers == sorted(numbers, reverse=desc)


@given(
    st.lists(st.one_of(st.none(), st.integers(-50, 50), st.floats(-1e6, 1e6)), min_size=1, max_size=20), st.booleans()
)
def test_the_marked_best_is_the_extreme_of_the_numbers(values: list[float | None], low: bool) -> None:
    values = [*values, 0]  # one number at least: a column no task has cannot be sorted by
    tasks = [task(i + 1, {"k": i}, None if v is None else {"score": v}) for i, v in enumerate(values)]
    t = build(tasks, minimize=["score"] if low else [], sort="score", desc=True)
    present = [v for v in values if v is not None]
    if len(present) < 2 or min(present) == max(present):
        assert "score" not in t.best
        return
    want = min(present) if low else max(present)
    marked = [r["score"] for r in t.rows if t.is_best(r, "score")]
    assert marked and all(v == want for v in marked) and len(marked) == present.count(want)
