"""Conversion of live metric points (a name, a time, an int or a float value)."""

from __future__ import annotations

import math
from collections.abc import Iterable

from dtask.v1 import common_pb2 as cpb

from dtask_common.models.metrics import INT64_MAX, MetricPoint, metric_name

_Point = cpb.MetricPoint


def metric_to_pb(p: MetricPoint) -> cpb.MetricPoint:
    if type(p.value) is int:
        return _Point(name=p.name, at=p.at, int_value=p.value)
    return _Point(name=p.name, at=p.at, float_value=p.value)


def metrics_to_pb(points: Iterable[MetricPoint]) -> list[cpb.MetricPoint]:
    return [metric_to_pb(p) for p in points]


def metrics_from_pb(points: Iterable[cpb.MetricPoint]) -> tuple[MetricPoint, ...]:
    """The points that hold a valid name, a finite time and a finite value (others are dropped)."""
    out = []
    valid: dict[str, bool] = {}  # a report repeats its few names: each is checked once
    for p in points:
        name = p.name
        ok = valid.get(name)
        if ok is None:
            ok = valid[name] = metric_name(name) is not None
        kind = p.WhichOneof("value")
        if not ok or kind is None or not math.isfinite(p.at):
            continue
        value: int | float = p.int_value if kind == "int_value" else p.float_value
        if kind == "float_value" and not math.isfinite(value):
            continue
        if kind == "int_value" and not -INT64_MAX <= value <= INT64_MAX:
            continue
        out.append(MetricPoint(name, p.at, value))
    return tuple(out)
