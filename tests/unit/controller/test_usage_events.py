"""Usage samples reach watchers in bursts (at the usage tick, or before any other event), in order, each once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from dtask_common import events as ev
from dtask_common.config import Config
from dtask_common.models import Capacity, UsageSample
from dtask_controller import recovery, reports
from dtask_controller.core import ControllerCore
from dtask_controller.fanout import Watcher
from dtask_controller.runner_messages import Hello
from dtask_controller.settings import Settings
from dtask_controller.store import SqliteStore


def core(tmp_path: Path) -> ControllerCore:
    e = ControllerCore(SqliteStore(tmp_path / "c.db"), Settings.from_config(Config()), lambda: 1000.0)
    recovery.restore(e)
    for name in ("r1", "r2", "r3"):
        reports.connected(e, Hello(name, capacity=Capacity(), protocol_version=1))
    return e


def in_loop(body: Callable[[], None]) -> None:
    """Run body inside an event loop (the core schedules its dispatch rounds on it)."""

    async def go() -> None:
        body()

    asyncio.run(go())


def taken(w: Watcher) -> list[tuple[str, str, int]]:
    """(kind, what, seq) of the watcher's queued events, emptying the queue."""
    out = []
    while w.queue:
        e = w.queue.popleft()
        if isinstance(e.body, ev.UsageEvent):
            out.append(("usage", f"{e.body.executor}@{e.body.sample.at:g}", e.seq))
        else:
            out.append((type(e.body).__name__, "", e.seq))
    return out


def test_samples_wait_for_the_tick_then_go_out_together_in_order(tmp_path: Path) -> None:
    def body() -> None:
        e = core(tmp_path)
        w = e.fanout.subscribe()
        for i, name in enumerate(("r2", "r1", "r3", "r2")):
            reports.usage(e, name, UsageSample(at=float(i)))
        assert taken(w) == []  # one burst per tick, not one wake-up per sample
        assert e.registry.usage("r2", 60).latest == UsageSample(at=3.0)  # the history has them at once
        e.fanout.flush_deferred()
        got = taken(w)
        assert [x[:2] for x in got] == [("usage", "r2@0"), ("usage", "r1@1"), ("usage", "r3@2"), ("usage", "r2@3")]
        assert [x[2] for x in got] == sorted({x[2] for x in got})
        e.fanout.flush_deferred()
        assert taken(w) == []
        e.store.close()

    in_loop(body)


def test_a_sample_goes_out_before_any_later_event(tmp_path: Path) -> None:
    def body() -> None:
        e = core(tmp_path)
        w = e.fanout.subscribe()
        reports.usage(e, "r1", UsageSample(at=5.0))
        e.fanout.publish(e.executor_event(ev.ExecutorEventKind.UPDATED, "r2"))
        assert [x[:2] for x in taken(w)] == [("usage", "r1@5"), ("ExecutorEvent", "")]
        e.store.close()

    in_loop(body)


def test_a_new_watcher_gets_no_sample_from_before_it_came(tmp_path: Path) -> None:
    def body() -> None:
        e = core(tmp_path)
        first = e.fanout.subscribe()
        reports.usage(e, "r1", UsageSample(at=1.0))
        second = e.fanout.subscribe()  # its snapshot holds the sample already
        e.fanout.flush_deferred()
        assert [x[:2] for x in taken(first)] == [("usage", "r1@1")] and taken(second) == []
        e.store.close()

    in_loop(body)
