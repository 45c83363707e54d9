"""Usage conversion as it was before its fast path (every field read and written, the Watch event copied in): the
reference the fast one must agree with."""

from __future__ import annotations

from dtask.v1 import common_pb2 as cpb
from dtask.v1 import controller_pb2 as pb
from dtask_common import events as ev
from dtask_common import models as m
from dtask_common.convert.executors import attempt_usage_from_pb, attempt_usage_to_pb
from dtask_common.convert.scalars import opt, ts_from_pb, ts_to_pb


def usage_to_pb(u: m.UsageSample) -> cpb.UsageSample:
    return cpb.UsageSample(
        at=ts_to_pb(u.at),
        cpu_percent=u.cpu_percent,
        per_cpu_percent=list(u.per_cpu_percent),
        ram_percent=u.ram_percent,
        swap_percent=u.swap_percent,
        load_avg=list(u.load_avg),
        gpus=[
            cpb.GpuUsage(
                index=g.index,
                name=g.name,
                util_percent=g.util_percent,
                memory_percent=g.memory_percent,
                memory_total_bytes=g.memory_total_bytes,
            )
            for g in u.gpus
        ],
        ram_total_bytes=u.ram_total_bytes,
        ram_used_bytes=u.ram_used_bytes,
        attempts=[attempt_usage_to_pb(a) for a in u.attempts],
    )


def usage_from_pb(u: cpb.UsageSample) -> m.UsageSample:
    return m.UsageSample(
        at=ts_from_pb(u, "at") or 0.0,
        cpu_percent=u.cpu_percent,
        per_cpu_percent=tuple(u.per_cpu_percent),
        ram_percent=u.ram_percent,
        swap_percent=opt(u, "swap_percent"),
        load_avg=tuple(u.load_avg),
        gpus=tuple(
            m.GpuUsage(
                index=g.index,
                name=g.name,
                util_percent=g.util_percent,
                memory_percent=g.memory_percent,
                memory_total_bytes=g.memory_total_bytes,
            )
            for g in u.gpus
        )
        if u.gpus
        else (),
        ram_total_bytes=u.ram_total_bytes,
        ram_used_bytes=u.ram_used_bytes,
        attempts=tuple(attempt_usage_from_pb(a) for a in u.attempts),
    )


def usage_event_to_pb(e: ev.WatchEvent) -> pb.WatchEvent:
    """event_to_pb of a usage event."""
    assert isinstance(e.body, ev.UsageEvent)
    out = pb.WatchEvent(seq=e.seq, at=ts_to_pb(e.at), resync=e.resync)
    out.usage.CopyFrom(pb.UsageEvent(executor=e.body.executor, sample=usage_to_pb(e.body.sample)))
    return out
