"""Conversion of live metric points (a name, a time, an int or a float value)."""

from __future__ import annotations

from collections.abc import Iterable

from dtask.v1 import common_pb2 as cpb

from dtask_common.convert.scalars import ts_from_pb, ts_to_pb
from dtask_common.models.metrics import MetricPoint, metric_name, metric_value


def metric_to_pb(p: MetricPoint) -> cpb.MetricPoint:
    out = cpb.MetricPoint(name=p.name, at=ts_to_pb(p.at))
    if isinstance(p.value, int):
        out.int_value = p.value
    else:
        out.float_value = p.value
    return out


def metrics_to_pb(points: Iterable[MetricPoint]) -> list[cpb.MetricPoint]:
    return [metric_to_pb(p) for p in points]


def metrics_from_pb(points: Iterable[cpb.MetricPoint]) -> tuple[MetricPoint, ...]:
    """The points that hold a valid name, a time and a finite value (others are dropped)."""
    out = []
    for p in points:
        kind = p.WhichOneof("value")
        value = metric_value(p.int_value if kind == "int_value" else p.float_value if kind == "float_value" else None)
        at = ts_from_pb(p, "at")
        if value is None or at is None or metric_name(p.name) is None:
            continue
        out.append(MetricPoint(p.name, at, value))
    return tuple(out)
