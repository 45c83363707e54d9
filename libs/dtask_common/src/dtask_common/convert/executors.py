"""Conversion of executors (runners): capacity, state and resource usage."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dtask.v1 import common_pb2 as cpb
from dtask.v1 import controller_pb2 as pb

from dtask_common import models as m
from dtask_common.convert.scalars import (
    executor_state_from_pb,
    executor_state_to_pb,
    opt,
    set_fields_from_pb,
    ts_from_pb,
    ts_into_pb,
    ts_to_pb,
)


def attempt_usage_to_pb(u: m.AttemptUsage) -> cpb.RunningAttempt:
    return cpb.RunningAttempt(
        task_id=u.task_id,
        attempt=u.attempt,
        cpu_percent=u.cpu_percent,
        rss_bytes=u.rss_bytes,
        gpu_memory_bytes=u.gpu_memory_bytes,
        cpu_time_s=u.cpu_time_s,
    )


def attempt_usage_from_pb(u: cpb.RunningAttempt) -> m.AttemptUsage:
    return m.AttemptUsage(
        task_id=u.task_id,
        attempt=u.attempt,
        cpu_percent=u.cpu_percent,
        rss_bytes=u.rss_bytes,
        gpu_memory_bytes=opt(u, "gpu_memory_bytes"),
        cpu_time_s=u.cpu_time_s,
    )


def usage_to_pb(u: m.UsageSample) -> cpb.UsageSample:
    out = cpb.UsageSample()
    usage_into_pb(out, u)
    return out


def usage_into_pb(out: cpb.UsageSample, u: m.UsageSample) -> None:
    """usage_to_pb(u), written into an empty message (a field of the message being built: nothing to copy). Only
    what is set is written: an empty repeated field given to a constructor still costs a container each."""
    ts_into_pb(out.at, u.at)
    out.cpu_percent = u.cpu_percent
    if u.per_cpu_percent:
        out.per_cpu_percent.extend(u.per_cpu_percent)
    out.ram_percent = u.ram_percent
    if u.swap_percent is not None:
        out.swap_percent = u.swap_percent
    if u.load_avg:
        out.load_avg.extend(u.load_avg)
    for g in u.gpus:
        out.gpus.add(
            index=g.index,
            name=g.name,
            util_percent=g.util_percent,
            memory_percent=g.memory_percent,
            memory_total_bytes=g.memory_total_bytes,
        )
    out.ram_total_bytes = u.ram_total_bytes
    out.ram_used_bytes = u.ram_used_bytes
    if u.attempts:
        out.attempts.extend(attempt_usage_to_pb(a) for a in u.attempts)


def _gpu_from_pb(g: cpb.GpuUsage) -> m.GpuUsage:
    return m.GpuUsage(
        index=g.index,
        name=g.name,
        util_percent=g.util_percent,
        memory_percent=g.memory_percent,
        memory_total_bytes=g.memory_total_bytes,
    )


# How each set field of a UsageSample message becomes the model's (None: as it is). ListFields gives the set fields
# only: a runner's sample sets four or five of ten, and reading an unset repeated field builds an empty container
# each time (the controller takes a sample per runner a second).
_USAGE_FIELDS: dict[str, Callable[[Any], Any] | None] = {
    "at": lambda ts: ts.seconds + ts.nanos / 1e9,
    "cpu_percent": None,
    "per_cpu_percent": tuple,
    "ram_percent": None,
    "swap_percent": None,  # optional: listed when set, 0.0 included
    "load_avg": tuple,
    "gpus": lambda gs: tuple(_gpu_from_pb(g) for g in gs),
    "ram_total_bytes": None,
    "ram_used_bytes": None,
    "attempts": lambda a: tuple(attempt_usage_from_pb(x) for x in a),
}


def usage_from_pb(u: cpb.UsageSample) -> m.UsageSample:
    return m.UsageSample(**{"at": 0.0, **set_fields_from_pb(u, _USAGE_FIELDS)})


def capacity_to_pb(c: m.Capacity) -> cpb.Capacity:
    return cpb.Capacity(slots=c.slots, cpus=c.cpus, memory_mb=c.memory_mb, gpus=list(c.gpus), prefetch=c.prefetch)


def capacity_from_pb(c: cpb.Capacity) -> m.Capacity:
    return m.Capacity(
        slots=c.slots, cpus=c.cpus, memory_mb=c.memory_mb, gpus=tuple(c.gpus), prefetch=max(0, c.prefetch)
    )


def executor_to_pb(e: m.ExecutorInfo) -> cpb.ExecutorInfo:
    return cpb.ExecutorInfo(
        name=e.name,
        state=executor_state_to_pb(e.state),
        capacity=capacity_to_pb(e.capacity),
        labels=dict(e.labels),
        address=e.address,
        version=e.version,
        protocol_version=e.protocol_version,
        connected_since=ts_to_pb(e.connected_since),
        last_seen=ts_to_pb(e.last_seen),
        running_task_ids=list(e.running_task_ids),
        last_usage=usage_to_pb(e.last_usage) if e.last_usage else None,
        containment=e.containment,
    )


def executor_from_pb(e: cpb.ExecutorInfo) -> m.ExecutorInfo:
    return m.ExecutorInfo(
        name=e.name,
        state=executor_state_from_pb(e.state),
        capacity=capacity_from_pb(e.capacity),
        labels=dict(e.labels),
        address=e.address,
        version=e.version,
        protocol_version=e.protocol_version,
        connected_since=ts_from_pb(e, "connected_since"),
        last_seen=ts_from_pb(e, "last_seen"),
        running_task_ids=tuple(e.running_task_ids),
        last_usage=usage_from_pb(e.last_usage) if e.HasField("last_usage") else None,
        containment=e.containment,
    )


def executor_usage_to_pb(u: m.ExecutorUsage) -> pb.ExecutorUsage:
    return pb.ExecutorUsage(
        executor=u.executor,
        dead=u.dead,
        latest=usage_to_pb(u.latest) if u.latest else None,
        history=[usage_to_pb(s) for s in u.history],
    )


def executor_usage_from_pb(u: pb.ExecutorUsage) -> m.ExecutorUsage:
    return m.ExecutorUsage(
        executor=u.executor,
        dead=u.dead,
        latest=usage_from_pb(u.latest) if u.HasField("latest") else None,
        history=tuple(usage_from_pb(s) for s in u.history),
    )
