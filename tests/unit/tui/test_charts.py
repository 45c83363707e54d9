"""Charts of live metrics: the pure renderer, and the TUI's chart views rendered to text at 80x24 and 160x48 (every
metric of a task; one metric of every task of a sweep, the diverging one marked), fed by Watch events."""

from __future__ import annotations

import asyncio
import math

from dtask_common.events import ProgressEvent, WatchEvent
from dtask_common.models import MetricPoint, TaskState
from dtask_tui.app import TuiApp
from dtask_tui.chart import BRAILLE, Line, legend, render, to_text
from dtask_tui.state import Chart, TuiState

from tests.unit.tui.fakes import NOW, FakeController, task

SIZES = ((80, 24), (160, 48))


def braille(text: str) -> int:
    return sum(1 for ch in text if BRAILLE < ord(ch) <= BRAILLE + 0xFF)


def loss_curve(i: int, n: int = 120, start: float = NOW - 100) -> tuple[MetricPoint, ...]:
    """Task i's loss falls, except task 3's, which diverges; its accuracy rises; its step is an int."""
    out = []
    for k in range(n):
        loss = 2.0 / (1 + k * 0.1) if i != 3 else 0.5 + k * 0.05
        out += [
            MetricPoint("loss", start + k, loss),
            MetricPoint("acc", start + k, 0.5 + 0.4 * (1 - math.exp(-k / 30))),
            MetricPoint("step", start + k, k),
        ]
    return tuple(out)


def test_render_is_exactly_the_size_asked_for() -> None:
    lines = [Line("loss", [(float(k), 1 / (1 + k)) for k in range(50)])]
    for cols, rows in SIZES:
        out = render(lines, cols, rows, title="loss")
        assert len(out) == rows
        assert all(sum(len(t) for _, t in line) == cols for line in out), to_text(out)
        assert braille(to_text(out)) > 10
    assert "no values yet" in to_text(render([], 80, 10))
    assert "too small" in to_text(render(lines, 80, 2))
    assert render(lines, 0, 10) == []


def test_render_labels_the_axes_and_makes_labels_safe() -> None:
    out = to_text(render([Line("x", [(0.0, 0.25), (90.0, 0.75)])], 60, 10, title="evil\x1b[2Jtitle"))
    assert "\x1b" not in out and "0.75" in out and "0.25" in out and "1:30" in out
    keys = to_text(legend([Line("run\x1b]0;x\x07", [(0.0, 1.0)])], 40, 2))
    assert "\x1b" not in keys and "\x07" not in keys


def test_a_constant_series_and_a_single_point_still_draw() -> None:
    assert braille(to_text(render([Line("c", [(0.0, 3.0), (5.0, 3.0)])], 40, 8))) > 0
    assert braille(to_text(render([Line("p", [(0.0, 3.0)])], 40, 8))) == 1


async def _app() -> tuple[TuiApp, FakeController]:
    fc = FakeController()
    tasks = [task(i, TaskState.RUNNING, name=f"sweep[lr={i}]") for i in range(1, 6)]
    for i, t in enumerate(tasks, 1):
        t.attempts[-1].metrics = loss_curve(i)
    fc.tasks_by_id = {t.id: t for t in tasks}
    app = TuiApp(fc, TuiState(fc.address, clock=lambda: NOW), poll_interval=0.01)
    await app.start()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while not (app.state.synced and "t1" in app.state.tasks):
        assert loop.time() < deadline, "the snapshot never came"
        await asyncio.sleep(0.002)
    return app, fc


def test_task_and_sweep_charts_at_80x24_and_160x48() -> None:
    async def t() -> None:
        app, fc = await _app()
        app.state.focus_task = "t2"
        assert "Metrics  m: charts  M: the sweep" in "\n".join(app.render_text((80, 24)))  # the details pane
        wide = "\n".join(app.render_text((160, 48)))
        assert "loss" in wide and "▁" in wide and "0.155" in wide  # a sparkline per metric, its latest value
        app.keypress("m")
        assert app.state.chart is Chart.TASK
        for cols, rows in SIZES:
            screen = app.render_text((cols, rows))
            text = "\n".join(screen)
            assert len(screen) == rows and "Metrics of sweep[lr=2] (t2)" in text
            assert braille(text) > 20 and " loss = " in text
        assert " acc = " in "\n".join(app.render_text((160, 48)))  # more charts fit the larger screen
        app.keypress("]")
        assert app.state.chart_metric == 1
        app.keypress("esc")
        assert app.state.chart is None
        app.keypress("M")
        assert app.state.chart is Chart.SWEEP
        for cols, rows in SIZES:
            text = "\n".join(app.render_text((cols, rows)))
            assert "Sweep sweep: loss of 5 of 5 tasks" in text, text
            assert "sweep[lr=3] diverges" in text and "▶ sweep[lr=3]" in text
            assert braille(text) > 20
        await app.stop()

    asyncio.run(asyncio.wait_for(t(), 15))


def test_progress_events_extend_the_chart() -> None:
    async def t() -> None:
        app, fc = await _app()
        app.state.focus_task = "t1"
        app.keypress("m")
        before = app.state.metrics.of(app.state.tasks["t1"]).series("loss")
        new = (MetricPoint("loss", NOW + 30, 7.5), MetricPoint("lr", NOW + 30, 0.001))
        await fc.events.put(WatchEvent(900, NOW, ProgressEvent("t1", 1, None, new)))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5
        while app.state.metrics.of(app.state.tasks["t1"]).series("loss")[-1].value != 7.5:
            assert loop.time() < deadline
            await asyncio.sleep(0.002)
        after = app.state.metrics.of(app.state.tasks["t1"]).series("loss")
        assert after[0] == before[0] and len(after) <= 256
        text = "\n".join(app.render_text((160, 48)))
        assert "loss = 7.5" in text
        await app.stop()

    asyncio.run(asyncio.wait_for(t(), 15))
