"""The live metrics the TUI holds per task: its current attempt's series, as task and progress events leave it."""

from __future__ import annotations

from dtask_common.metric_series import MetricSeries
from dtask_common.models import MetricPoint, Task


def sweep_name(name: str) -> str:
    """The matrix base name a task shares with the rest of its sweep (`train[lr=0.1]` -> `train`); '' for none."""
    base, bracket, _ = name.partition("[")
    return base if bracket and base else ""


class LiveMetrics:
    """Per task, the series of its current attempt: taken whole from task events (the controller sends all of
    it), extended by the points of progress events; bounded as the controller bounds it."""

    def __init__(self) -> None:
        self._series: dict[str, tuple[int, MetricSeries]] = {}

    def task(self, t: Task) -> None:
        """A task event or snapshot: its current attempt's series replaces what was held."""
        cur = t.current
        if cur is None or not cur.metrics:
            held = self._series.get(t.id)
            if held is not None and (cur is None or held[0] != cur.number):
                del self._series[t.id]
            return
        s = MetricSeries()
        s.add(cur.metrics)
        self._series[t.id] = (cur.number, s)

    def points(self, t: Task | None, task_id: str, attempt: int, points: tuple[MetricPoint, ...]) -> None:
        """A progress event's new points for attempt `attempt` of the task."""
        if not points:
            return
        held = self._series.get(task_id)
        if held is None or held[0] != attempt:
            if t is not None and t.current is not None and t.current.number != attempt:
                return  # of an attempt that is not the task's current one
            held = self._series[task_id] = (attempt, MetricSeries())
        held[1].add(points)

    def drop(self, task_id: str) -> None:
        self._series.pop(task_id, None)

    def clear(self) -> None:
        self._series.clear()

    def of(self, t: Task) -> MetricSeries:
        """The series of the task's current attempt (empty when it reported none)."""
        held = self._series.get(t.id)
        cur = t.current
        if held is not None and (cur is None or held[0] == cur.number):
            return held[1]
        s = MetricSeries()
        if cur is not None:
            s.add(cur.metrics)
        return s
