"""Bounded time series of an attempt's metrics: downsampled (never truncated) past a bound; pure."""

from __future__ import annotations

from collections.abc import Iterable

from dtask_common.models.metrics import MAX_METRICS, MAX_POINTS, MetricPoint


def thin(points: list[MetricPoint]) -> list[MetricPoint]:
    """Every other point, the first and the last always kept (about half as many)."""
    if len(points) <= 2:
        return list(points)
    kept = points[:-1:2]
    kept.append(points[-1])
    return kept


class MetricSeries:
    """Points per metric, at most `bound` per metric (every other one dropped when a metric reaches more, the
    first and the latest always kept) and at most `max_metrics` metrics (points of later names are ignored)."""

    def __init__(self, bound: int = MAX_POINTS, max_metrics: int = MAX_METRICS):
        if bound < 2:
            raise ValueError("a metric series keeps at least 2 points (the first and the last)")
        self.bound = bound
        self.max_metrics = max_metrics
        self._series: dict[str, list[MetricPoint]] = {}

    def __len__(self) -> int:
        return sum(len(s) for s in self._series.values())

    def __bool__(self) -> bool:
        return bool(self._series)

    def add(self, points: Iterable[MetricPoint]) -> None:
        for p in points:
            s = self._series.get(p.name)
            if s is None:
                if len(self._series) >= self.max_metrics:
                    continue
                s = self._series[p.name] = []
            s.append(p)
            if len(s) > self.bound:
                self._series[p.name] = thin(s)

    def names(self) -> list[str]:
        return list(self._series)

    def series(self, name: str) -> list[MetricPoint]:
        return list(self._series.get(name, ()))

    def points(self) -> tuple[MetricPoint, ...]:
        """Every kept point, metric by metric, each in the order it came."""
        return tuple(p for s in self._series.values() for p in s)
