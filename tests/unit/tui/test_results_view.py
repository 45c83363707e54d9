"""The Results view rendered to text at 80×24 and 160×48: the sweep's parameters and metrics, sorting, best marked."""

from __future__ import annotations

from dataclasses import replace

import pytest
from dtask_common.events import Snapshot, WatchEvent
from dtask_common.models import Identity, QueueStatus, Task, TaskState
from dtask_tui.app import TuiApp
from dtask_tui.keys import Context
from dtask_tui.state import TuiState
from dtask_tui.status import ConnState

from tests.unit.tui.fakes import NOW, FakeController, task

SIZES = [(80, 24), (160, 48)]
ACC = {("mlp", 0.01): 0.81, ("mlp", 0.1): 0.93, ("mlp", 0.5): 0.88, ("cnn", 0.01): 0.85, ("cnn", 0.1): 0.97}


def sweep() -> list[Task]:
    out = []
    i = 0
    for model in ("mlp", "cnn"):
        for lr in (0.01, 0.1, 0.5):
            i += 1
            acc = ACC.get((model, lr))
            state = TaskState.SUCCEEDED if acc is not None else TaskState.FAILED
            result = None if acc is None else {"epoch": 2, "eval_accuracy": acc, "eval_loss": round(1 - acc, 2)}
            t = task(i, state, name=f"train[model={model},lr={lr}]", tags=("sweep",), result=result)
            t.spec = replace(t.spec, params={"model": model, "lr": lr})
            out.append(t)
    other = task(7, TaskState.SUCCEEDED, name="eval", tags=("sweep",), result={"score": 3})
    return [*out, other]


def make_app() -> TuiApp:
    st = TuiState("127.0.0.1:50051", clock=lambda: NOW)
    st.apply(WatchEvent(1, NOW, Snapshot(sweep(), [], [], QueueStatus(), last=True)))
    st.set_connection(ConnState.CONNECTED, identity=Identity("operator", "alice", "ctrl@test"))
    app = TuiApp(FakeController(), st)
    app.state.focus_task = "t2"
    return app


def find(lines: list[str], text: str) -> int:
    for i, line in enumerate(lines):
        if text in line:
            return i
    raise AssertionError(f"{text!r} not on screen:\n" + "\n".join(lines))


def rows_of(lines: list[str]) -> list[list[str]]:
    start = find(lines, "model") + 1
    return [ln.split() for ln in lines[start:] if ln.split() and ln.split()[0].startswith("t")]


@pytest.mark.parametrize("size", SIZES)
def test_results_view_shows_the_sweep_with_the_best_marked(size: tuple[int, int]) -> None:
    app = make_app()
    app.keypress("R")
    assert app.context() is Context.RESULTS
    lines = app.render_text(size)
    assert len(lines) == size[1] and all(len(line) == size[0] for line in lines)
    assert "Results of train[...] — 6 tasks — in submission order" in lines[find(lines, "Results of")]
    head = lines[find(lines, "model")].split()
    assert head[:6] == ["id", "model", "lr", "epoch", "eval_accuracy", "eval_loss"]
    rows = rows_of(lines)
    assert [r[0] for r in rows] == ["t1", "t2", "t3", "t4", "t5", "t6"]  # eval is of another sweep
    assert rows[4][1:6] == ["cnn", "0.1", "2", "0.97*", "0.03*"] and rows[5][1:4] == ["cnn", "0.5", "failed"]
    canvas = app.root.render(size, focus=True)
    best_row = find(lines, "0.97*")
    attrs = {attr for attr, _cs, text in list(canvas.content())[best_row] if b"0.97*" in text}
    assert attrs == {"best"}
    assert "back" in lines[-1] and "sort" in lines[-1]


@pytest.mark.parametrize("size", SIZES)
def test_results_view_sorts_with_keys_and_goes_back(size: tuple[int, int]) -> None:
    app = make_app()
    app.keypress("R")
    for _ in range(5):  # id, model, lr, epoch, eval_accuracy
        app.keypress("s")
    app.keypress("S")
    lines = app.render_text(size)
    assert "sorted by eval_accuracy ↓" in lines[find(lines, "Results of")]
    assert [r[0] for r in rows_of(lines)] == ["t5", "t2", "t3", "t4", "t1", "t6"]  # missing last
    app.keypress("T")
    lines = app.render_text(size)
    assert "Results of tag sweep — 7 tasks" in lines[find(lines, "Results of")]
    assert "score" in lines[find(lines, "model")]
    app.keypress("esc")
    assert app.context() is Context.TASKS and app.state.results is None
    assert "Results of" not in "\n".join(app.render_text(size))


def test_results_view_of_a_task_without_a_sweep_and_of_nothing() -> None:
    app = make_app()
    app.state.focus_task = "t7"
    app.keypress("R")
    lines = app.render_text((80, 24))
    assert "Results of eval[...] — 1 tasks" in lines[find(lines, "Results of")]
    app.keypress("T")
    assert "tag sweep" in "\n".join(app.render_text((80, 24)))
    empty = TuiApp(FakeController(), TuiState("x", clock=lambda: NOW))
    empty.keypress("R")
    assert empty.state.results is None and "no task selected" in "\n".join(empty.render_text((80, 24)))
