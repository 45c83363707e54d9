"""The controller's Prometheus metrics: a registry of its own; counts and live state read at scrape time,
latency histograms observed at the event."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dtask_common.metrics_http import on_loop
from dtask_common.models import ExecutorState
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from dtask_controller import queries

if TYPE_CHECKING:
    from dtask_controller.core import ControllerCore

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
WAIT_BUCKETS = (0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600, 7200, 21600, 43200, 86400, 259200)
COMMIT_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


@dataclass
class LiveState:
    """What a scrape reads of the core, copied on the event loop in one go."""

    tasks: dict[str, int]
    executors: dict[str, int]
    watchers: int
    dispatches: int
    finishes: dict[str, int]
    retries: int
    lost: int
    rejected: dict[str, int]
    pruned: int
    paused: bool


def live_state(core: ControllerCore) -> LiveState:
    """The core's counts and gauges now (called on the event loop)."""
    q = queries.queue(core)
    tasks = {
        "pending": q.pending,
        "running": q.running,
        "succeeded": q.succeeded,
        "failed": q.failed,
        "cancelled": q.cancelled,
        "lost": q.lost,
    }
    executors = {s.value: 0 for s in ExecutorState}
    for name in core.registry.names():
        executors[core.registry.state(name, len(core.scheduler.running_on(name))).value] += 1
    t = core.tally
    return LiveState(
        tasks=tasks,
        executors=executors,
        watchers=len(core.fanout),
        dispatches=t.dispatches,
        finishes=dict(t.finishes),
        retries=t.retries,
        lost=t.lost,
        rejected=dict(t.rejected),
        pruned=t.pruned,
        paused=q.paused,
    )


class _LiveCollector(Collector):
    """Reads the core at scrape time (nothing is counted twice, nothing costs when nobody scrapes)."""

    def __init__(self, core: ControllerCore, loop: asyncio.AbstractEventLoop):
        self._core = core
        self._loop = loop

    def collect(self) -> Iterator[Metric]:
        s = on_loop(self._loop, lambda: live_state(self._core))
        tasks = GaugeMetricFamily("dtask_tasks", "Tasks in the store by state.", labels=["state"])
        for state, n in s.tasks.items():
            tasks.add_metric([state], n)
        yield tasks
        yield CounterMetricFamily("dtask_dispatches", "Attempts dispatched to runners.", value=s.dispatches)
        finishes = CounterMetricFamily("dtask_finishes", "Tasks that finished, by outcome.", labels=["outcome"])
        for outcome in sorted({"succeeded", "failed", "cancelled"} | s.finishes.keys()):
            finishes.add_metric([outcome], s.finishes.get(outcome, 0))
        yield finishes
        yield CounterMetricFamily(
            "dtask_retries", "Attempts queued again (retries, lost attempts, operator retries).", value=s.retries
        )
        yield CounterMetricFamily("dtask_lost_attempts", "Attempts that became LOST.", value=s.lost)
        executors = GaugeMetricFamily("dtask_executors", "Known executors by state.", labels=["state"])
        for state, n in s.executors.items():
            executors.add_metric([state], n)
        yield executors
        yield GaugeMetricFamily("dtask_watch_subscribers", "Open Watch streams.", value=s.watchers)
        rejected = CounterMetricFamily(
            "dtask_rejected_reports",
            "Runner reports not applied (not the runner's attempt), by kind.",
            labels=["reason"],
        )
        for reason, n in sorted(s.rejected.items()):
            rejected.add_metric([reason], n)
        yield rejected
        yield CounterMetricFamily("dtask_pruned_tasks", "Finished tasks deleted by prune.", value=s.pruned)
        yield GaugeMetricFamily("dtask_queue_paused", "1 while the queue is paused.", value=int(s.paused))


@dataclass
class ControllerMetrics:
    """The controller's Prometheus registry (prometheus) and the histograms the core observes; ready_at holds when each pending task
    became ready (for the dispatch latency)."""

    prometheus: CollectorRegistry = field(default_factory=lambda: CollectorRegistry())
    ready_at: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        r = self.prometheus
        self.dispatch_latency = Histogram(
            "dtask_dispatch_latency_seconds",
            "From a task becoming ready (dependencies met, room or not) to its attempt being dispatched.",
            registry=r,
            buckets=LATENCY_BUCKETS,
        )
        self.queue_wait = Histogram(
            "dtask_queue_wait_seconds",
            "From a task's submission to the dispatch of its first attempt.",
            registry=r,
            buckets=WAIT_BUCKETS,
        )
        self.store_commit = Histogram(
            "dtask_store_commit_seconds", "Time of one store commit.", registry=r, buckets=COMMIT_BUCKETS
        )

    def observe_dispatch(self, task_id: str, attempt: int, now: float, submitted_at: float) -> None:
        """An attempt was dispatched now: its latency since the task became ready, its first wait since submission."""
        ready = self.ready_at.pop(task_id, None)
        if ready is not None:
            self.dispatch_latency.observe(max(0.0, now - ready))
        if attempt == 1:
            self.queue_wait.observe(max(0.0, now - submitted_at))

    def watch(self, core: ControllerCore, loop: asyncio.AbstractEventLoop) -> None:
        """Serve the core's live state (read on loop) with every scrape."""
        self.prometheus.register(_LiveCollector(core, loop))
