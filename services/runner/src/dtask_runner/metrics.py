"""The runner's Prometheus metrics: a registry of its own, read from the runner's live state at scrape time."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dtask_common.metrics_http import on_loop
from dtask_common.models import UsageSample
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from dtask_runner.runner import Runner


@dataclass(frozen=True)
class RunnerState:
    """What a scrape reads of the runner, copied on the event loop in one go."""

    running: int
    slots: int
    started: int
    finished: dict[str, int]
    usage: UsageSample | None
    logs_bytes: int
    logs_removed: int


def runner_state(runner: Runner) -> RunnerState:
    """The runner's counts and latest usage sample now (called on the event loop)."""
    return RunnerState(
        running=len(runner.launcher.running),
        slots=runner.capacity.slots,
        started=runner.attempts_started,
        finished=dict(runner.attempts_finished),
        usage=runner.last_usage,
        logs_bytes=runner.retention.logs_bytes,
        logs_removed=runner.retention.removed,
    )


class _RunnerCollector(Collector):
    """Every metric of the runner, read when scraped (the usage is the latest sample the runner took)."""

    def __init__(self, runner: Runner, loop: asyncio.AbstractEventLoop):
        self._runner = runner
        self._loop = loop

    def collect(self) -> Iterator[Metric]:
        s = on_loop(self._loop, lambda: runner_state(self._runner))
        yield GaugeMetricFamily("dtask_runner_running_attempts", "Attempts running now.", value=s.running)
        yield GaugeMetricFamily("dtask_runner_slots", "Attempts the runner runs at once.", value=s.slots)
        yield CounterMetricFamily("dtask_runner_attempts_started", "Attempts started.", value=s.started)
        finished = CounterMetricFamily(
            "dtask_runner_attempts_finished", "Attempts finished, by outcome.", labels=["outcome"]
        )
        for outcome in sorted({"succeeded", "failed", "cancelled"} | s.finished.keys()):
            finished.add_metric([outcome], s.finished.get(outcome, 0))
        yield finished
        yield GaugeMetricFamily(
            "dtask_runner_logs_bytes", "Bytes of attempt logs kept on disk (at the last sweep).", value=s.logs_bytes
        )
        yield CounterMetricFamily(
            "dtask_runner_logs_removed", "Attempt logs removed by retention.", value=s.logs_removed
        )
        u = s.usage
        if u is None:
            return
        yield GaugeMetricFamily(
            "dtask_runner_cpu_percent", "CPU use of the machine, all cores (0-100).", value=u.cpu_percent
        )
        yield GaugeMetricFamily("dtask_runner_ram_percent", "RAM in use (0-100).", value=u.ram_percent)
        yield GaugeMetricFamily("dtask_runner_ram_used_bytes", "RAM in use.", value=u.ram_used_bytes)
        yield GaugeMetricFamily("dtask_runner_ram_total_bytes", "RAM of the machine.", value=u.ram_total_bytes)
        util = GaugeMetricFamily("dtask_runner_gpu_utilization_percent", "GPU utilisation (0-100).", labels=["gpu"])
        mem = GaugeMetricFamily("dtask_runner_gpu_memory_percent", "GPU memory in use (0-100).", labels=["gpu"])
        used = GaugeMetricFamily("dtask_runner_gpu_memory_used_bytes", "GPU memory in use.", labels=["gpu"])
        total = GaugeMetricFamily("dtask_runner_gpu_memory_total_bytes", "GPU memory.", labels=["gpu"])
        for g in u.gpus:
            index = [str(g.index)]
            util.add_metric(index, g.util_percent)
            mem.add_metric(index, g.memory_percent)
            used.add_metric(index, g.memory_total_bytes * g.memory_percent / 100.0)
            total.add_metric(index, g.memory_total_bytes)
        yield from (util, mem, used, total)


def runner_registry(runner: Runner, loop: asyncio.AbstractEventLoop) -> CollectorRegistry:
    """A registry of the runner's own (never the global one) that reads runner on loop when scraped."""
    registry = CollectorRegistry()
    registry.register(_RunnerCollector(runner, loop))
    return registry
