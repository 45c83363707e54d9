"""Live metrics of a running attempt: one named, typed value at one moment."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import NamedTuple

MAX_METRIC_NAME = 64
# How many points of one metric the controller keeps per attempt (downsampled beyond, first and last kept).
MAX_POINTS = 256
# How many metrics of one attempt are kept (later names are ignored).
MAX_METRICS = 32
INT64_MAX = 2**63 - 1


class MetricPoint(NamedTuple):
    """Metric `name` was `value` at `at` (Unix seconds, as the runner saw it); ints stay ints. (A named tuple:
    thousands are made a second, and a tuple is made several times faster than a frozen dataclass.)"""

    name: str
    at: float
    value: int | float


def metric_value(value: object) -> int | float | None:
    """A value a metric may take (a finite int or float; not a bool), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if -INT64_MAX <= value <= INT64_MAX else float(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return None


def metric_name(name: object) -> str | None:
    """A name a metric may have (printable, 1..MAX_METRIC_NAME characters), or None."""
    if not isinstance(name, str) or not 0 < len(name) <= MAX_METRIC_NAME or not name.isprintable():
        return None
    return name


def by_name(points: Iterable[MetricPoint]) -> dict[str, list[MetricPoint]]:
    """Points grouped by metric name, each group in the order given, names in order of first appearance."""
    out: dict[str, list[MetricPoint]] = {}
    for p in points:
        out.setdefault(p.name, []).append(p)
    return out
