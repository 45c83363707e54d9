"""The one place where protobuf messages and dtask_common models are converted."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

from dtask.v1 import common_pb2 as cpb
from dtask.v1 import controller_pb2 as pb
from dtask.v1 import runner_pb2 as rpb
from google.protobuf import struct_pb2, timestamp_pb2

from dtask_common import events as ev
from dtask_common import models as m

_STATE_TO_PB: dict[m.TaskState, Any] = {
    m.TaskState.PENDING: cpb.TASK_STATE_PENDING,
    m.TaskState.RUNNING: cpb.TASK_STATE_RUNNING,
    m.TaskState.SUCCEEDED: cpb.TASK_STATE_SUCCEEDED,
    m.TaskState.FAILED: cpb.TASK_STATE_FAILED,
    m.TaskState.CANCELLED: cpb.TASK_STATE_CANCELLED,
    m.TaskState.LOST: cpb.TASK_STATE_LOST,
}
_STATE_FROM_PB: dict[Any, m.TaskState] = {v: k for k, v in _STATE_TO_PB.items()}
_EXEC_TO_PB: dict[m.ExecutorState, Any] = {
    m.ExecutorState.IDLE: cpb.EXECUTOR_STATE_IDLE,
    m.ExecutorState.BUSY: cpb.EXECUTOR_STATE_BUSY,
    m.ExecutorState.DRAINING: cpb.EXECUTOR_STATE_DRAINING,
    m.ExecutorState.DEAD: cpb.EXECUTOR_STATE_DEAD,
    m.ExecutorState.GONE: cpb.EXECUTOR_STATE_GONE,
}
_EXEC_FROM_PB: dict[Any, m.ExecutorState] = {v: k for k, v in _EXEC_TO_PB.items()}
_TASK_KIND_TO_PB = {k: getattr(pb.TaskEvent, f"KIND_{k.name}") for k in ev.TaskEventKind}
_TASK_KIND_FROM_PB = {v: k for k, v in _TASK_KIND_TO_PB.items()}
_EXEC_KIND_TO_PB = {k: getattr(pb.ExecutorEvent, f"KIND_{k.name}") for k in ev.ExecutorEventKind}
_EXEC_KIND_FROM_PB = {v: k for k, v in _EXEC_KIND_TO_PB.items()}


# ---- scalars ----

def state_to_pb(state: m.TaskState) -> Any:
    return _STATE_TO_PB[state]


def state_from_pb(value: int) -> m.TaskState:
    try:
        return _STATE_FROM_PB[value]
    except KeyError:
        raise ValueError(f"unknown task state {value}") from None


def executor_state_to_pb(state: m.ExecutorState) -> Any:
    return _EXEC_TO_PB[state]


def executor_state_from_pb(value: int) -> m.ExecutorState:
    return _EXEC_FROM_PB.get(value, m.ExecutorState.GONE)


def ts_to_pb(t: float | None) -> timestamp_pb2.Timestamp | None:
    if t is None:
        return None
    out = timestamp_pb2.Timestamp()
    seconds = int(t // 1)
    out.seconds = seconds
    out.nanos = int(round((t - seconds) * 1e9)) % 1_000_000_000
    return out


def ts_from_pb(msg: Any, name: str) -> float | None:
    if not msg.HasField(name):
        return None
    ts = getattr(msg, name)
    return ts.seconds + ts.nanos / 1e9


def _plain(x: Any) -> bool:
    """Whether x is made of JSON's own types only (what a JSON round trip gives back unchanged)."""
    t = type(x)
    if t is str or t is float or t is int or t is bool or x is None:
        return True
    if t is dict:
        return all(type(k) is str and _plain(v) for k, v in x.items())
    if t is list:
        return all(_plain(v) for v in x)
    return False


def result_to_pb(result: dict[str, Any] | None) -> struct_pb2.Struct | None:
    if result is None:
        return None
    out = struct_pb2.Struct()
    # Round-trip through JSON so that only JSON-representable values travel (plain JSON data is
    # already what that round trip would give).
    try:
        plain = _plain(result)
    except RecursionError:  # nested too deep, or a cycle: JSON says which
        plain = False
    out.update(result if plain else json.loads(json.dumps(result, default=str)))
    return out


def _value_from_pb(v: Any) -> Any:
    """A google.protobuf.Value as json_format.MessageToDict gives it."""
    kind = v.WhichOneof("kind")
    if kind == "number_value":
        x = v.number_value
        if math.isinf(x) or math.isnan(x):
            raise ValueError(f"Fail to serialize {'Infinity' if math.isinf(x) else 'NaN'} for "
                             "Value.number_value, which would parse as string_value")
        return x
    if kind == "string_value":
        return v.string_value
    if kind == "bool_value":
        return v.bool_value
    if kind == "struct_value":
        return _struct_from_pb(v.struct_value)
    if kind == "list_value":
        return [_value_from_pb(x) for x in v.list_value.values]
    return None


def _struct_from_pb(s: struct_pb2.Struct) -> dict[str, Any]:
    fields = s.fields
    return {k: _value_from_pb(fields[k]) for k in fields}


def result_from_pb(msg: Any, name: str) -> dict[str, Any] | None:
    if not msg.HasField(name):
        return None
    return _struct_from_pb(getattr(msg, name))


def _opt(msg: Any, name: str) -> Any:
    return getattr(msg, name) if msg.HasField(name) else None


# ---- specs and tasks ----

def resources_to_pb(r: m.Resources) -> cpb.Resources:
    return cpb.Resources(cpus=float(r.cpus), memory_mb=int(r.memory_mb), gpus=int(r.gpus))


def resources_from_pb(r: cpb.Resources) -> m.Resources:
    return m.Resources(cpus=r.cpus, memory_mb=r.memory_mb, gpus=r.gpus)


def spec_to_pb(s: m.TaskSpec) -> cpb.TaskSpec:
    return cpb.TaskSpec(
        name=s.name,
        argv=list(s.argv),
        shell=s.shell,
        cwd=s.cwd,
        env=dict(s.env),
        resources=resources_to_pb(s.resources),
        labels=dict(s.labels),
        priority=s.priority,
        max_retries=s.max_retries,
        timeout_s=float(s.timeout_s),
        depends_on=list(s.depends_on),
        tags=list(s.tags),
        progress=s.progress,
        progress_pattern=s.progress_pattern,
        result_marker=s.result_marker,
        lost_after_s=float(s.lost_after_s),
    )


def spec_from_pb(s: cpb.TaskSpec) -> m.TaskSpec:
    return m.TaskSpec(
        name=s.name,
        argv=tuple(s.argv),
        shell=s.shell,
        cwd=s.cwd,
        env=dict(s.env),
        resources=resources_from_pb(s.resources),
        labels=dict(s.labels),
        priority=s.priority,
        max_retries=s.max_retries,
        timeout_s=s.timeout_s,
        depends_on=tuple(s.depends_on),
        tags=tuple(s.tags),
        progress=s.progress or "auto",
        progress_pattern=s.progress_pattern,
        result_marker=s.result_marker,
        lost_after_s=s.lost_after_s,
    )


def progress_to_pb(p: m.Progress) -> cpb.Progress:
    return cpb.Progress(
        label=p.label,
        step=p.step,
        total=p.total,
        percent=p.percent,
        rate=p.rate,
        elapsed_s=p.elapsed_s,
        eta_s=p.eta_s,
        updated_at=ts_to_pb(p.updated_at),
    )


def progress_from_pb(p: cpb.Progress) -> m.Progress:
    return m.Progress(
        label=p.label,
        step=p.step,
        total=_opt(p, "total"),
        percent=_opt(p, "percent"),
        rate=_opt(p, "rate"),
        elapsed_s=_opt(p, "elapsed_s"),
        eta_s=_opt(p, "eta_s"),
        updated_at=ts_from_pb(p, "updated_at"),
    )


def attempt_to_pb(a: m.Attempt) -> cpb.Attempt:
    return cpb.Attempt(
        task_id=a.task_id,
        number=a.number,
        executor=a.executor,
        gpu_ids=list(a.gpu_ids),
        dispatched_at=ts_to_pb(a.dispatched_at),
        finished_at=ts_to_pb(a.finished_at),
        state=state_to_pb(a.state),
        exit_code=a.exit_code,
        signal=a.signal,
        error=a.error,
        result=result_to_pb(a.result),
        peak_rss_bytes=a.peak_rss_bytes,
        cpu_time_s=a.cpu_time_s,
        duration_s=a.duration_s,
    )


def attempt_from_pb(a: cpb.Attempt) -> m.Attempt:
    return m.Attempt(
        task_id=a.task_id,
        number=a.number,
        executor=a.executor,
        gpu_ids=tuple(a.gpu_ids),
        dispatched_at=ts_from_pb(a, "dispatched_at"),
        finished_at=ts_from_pb(a, "finished_at"),
        state=state_from_pb(a.state),
        exit_code=_opt(a, "exit_code"),
        signal=_opt(a, "signal"),
        error=a.error,
        result=result_from_pb(a, "result"),
        peak_rss_bytes=a.peak_rss_bytes,
        cpu_time_s=a.cpu_time_s,
        duration_s=a.duration_s,
    )


def task_to_pb(t: m.Task) -> cpb.Task:
    return cpb.Task(
        id=t.id,
        spec=spec_to_pb(t.spec),
        state=state_to_pb(t.state),
        submitted_at=ts_to_pb(t.submitted_at),
        attempts=[attempt_to_pb(a) for a in t.attempts],
        progress=progress_to_pb(t.progress) if t.progress else None,
        result=result_to_pb(t.result),
        error=t.error,
        stale_since=ts_to_pb(t.stale_since),
    )


def task_from_pb(t: cpb.Task) -> m.Task:
    return m.Task(
        id=t.id,
        spec=spec_from_pb(t.spec),
        state=state_from_pb(t.state),
        submitted_at=ts_from_pb(t, "submitted_at"),
        attempts=[attempt_from_pb(a) for a in t.attempts],
        progress=progress_from_pb(t.progress) if t.HasField("progress") else None,
        result=result_from_pb(t, "result"),
        error=t.error,
        stale_since=ts_from_pb(t, "stale_since"),
    )


def attempt_result_to_pb(r: m.AttemptResult) -> pb.AttemptFinished:
    return pb.AttemptFinished(
        task_id=r.task_id,
        attempt=r.attempt,
        state=state_to_pb(r.state),
        exit_code=r.exit_code,
        signal=r.signal,
        result=result_to_pb(r.result),
        error=r.error,
        started_at=ts_to_pb(r.started_at),
        finished_at=ts_to_pb(r.finished_at),
        peak_rss_bytes=r.peak_rss_bytes,
        cpu_time_s=r.cpu_time_s,
        output_bytes=r.output_bytes,
    )


def attempt_result_from_pb(r: pb.AttemptFinished) -> m.AttemptResult:
    return m.AttemptResult(
        task_id=r.task_id,
        attempt=r.attempt,
        state=state_from_pb(r.state),
        exit_code=_opt(r, "exit_code"),
        signal=_opt(r, "signal"),
        result=result_from_pb(r, "result"),
        error=r.error,
        started_at=ts_from_pb(r, "started_at"),
        finished_at=ts_from_pb(r, "finished_at"),
        peak_rss_bytes=r.peak_rss_bytes,
        cpu_time_s=r.cpu_time_s,
        output_bytes=r.output_bytes,
    )


def running_to_pb(r: m.RunningAttempt) -> cpb.RunningAttempt:
    return cpb.RunningAttempt(task_id=r.task_id, attempt=r.attempt, started_at=ts_to_pb(r.started_at))


def running_from_pb(r: cpb.RunningAttempt) -> m.RunningAttempt:
    return m.RunningAttempt(task_id=r.task_id, attempt=r.attempt, started_at=ts_from_pb(r, "started_at"))


def field_error_to_pb(e: m.FieldError) -> pb.FieldError:
    return pb.FieldError(index=e.index, task_name=e.task_name, field=e.field, message=e.message)


def field_error_from_pb(e: pb.FieldError) -> m.FieldError:
    return m.FieldError(field=e.field, message=e.message, index=e.index, task_name=e.task_name)


# ---- executors and usage ----

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
    )


def usage_from_pb(u: cpb.UsageSample) -> m.UsageSample:
    return m.UsageSample(
        at=ts_from_pb(u, "at") or 0.0,
        cpu_percent=u.cpu_percent,
        per_cpu_percent=tuple(u.per_cpu_percent),
        ram_percent=u.ram_percent,
        swap_percent=_opt(u, "swap_percent"),
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
        ),
        ram_total_bytes=u.ram_total_bytes,
        ram_used_bytes=u.ram_used_bytes,
    )


def capacity_to_pb(c: m.Capacity) -> cpb.Capacity:
    return cpb.Capacity(slots=c.slots, cpus=c.cpus, memory_mb=c.memory_mb, gpus=list(c.gpus))


def capacity_from_pb(c: cpb.Capacity) -> m.Capacity:
    return m.Capacity(slots=c.slots, cpus=c.cpus, memory_mb=c.memory_mb, gpus=tuple(c.gpus))


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


def queue_to_pb(q: m.QueueStatus) -> cpb.QueueStatus:
    return cpb.QueueStatus(
        paused=q.paused,
        pending=q.pending,
        running=q.running,
        succeeded=q.succeeded,
        failed=q.failed,
        cancelled=q.cancelled,
        lost=q.lost,
    )


def queue_from_pb(q: cpb.QueueStatus) -> m.QueueStatus:
    return m.QueueStatus(
        paused=q.paused,
        pending=q.pending,
        running=q.running,
        succeeded=q.succeeded,
        failed=q.failed,
        cancelled=q.cancelled,
        lost=q.lost,
    )


def output_to_pb(c: m.OutputChunk) -> pb.OutputChunk:
    return pb.OutputChunk(task_id=c.task_id, attempt=c.attempt, offset=c.offset, data=c.data)


def output_from_pb(c: pb.OutputChunk) -> m.OutputChunk:
    return m.OutputChunk(task_id=c.task_id, attempt=c.attempt, offset=c.offset, data=c.data)


def identity_to_pb(i: m.Identity) -> pb.Identity:
    return pb.Identity(role=i.role, name=i.name, controller_name=i.controller_name, version=i.version)


def identity_from_pb(i: pb.Identity) -> m.Identity:
    return m.Identity(role=i.role, name=i.name, controller_name=i.controller_name, version=i.version)


def runner_status_from_pb(s: rpb.RunnerStatus) -> dict[str, Any]:
    """A runner's Status as a plain dict (runner-local introspection)."""
    return {
        "name": s.name,
        "capacity": capacity_from_pb(s.capacity),
        "labels": dict(s.labels),
        "running": [running_from_pb(r) for r in s.running],
        "last_usage": usage_from_pb(s.last_usage) if s.HasField("last_usage") else None,
        "draining": s.draining,
        "connected": s.connected,
        "controller": s.controller,
        "version": s.version,
    }


# ---- watch events ----

def snapshot_to_pb(s: ev.Snapshot) -> pb.Snapshot:
    return pb.Snapshot(
        tasks=[task_to_pb(t) for t in s.tasks],
        executors=[executor_to_pb(e) for e in s.executors],
        usage=[executor_usage_to_pb(u) for u in s.usage],
        queue=queue_to_pb(s.queue) if s.queue else None,
        last=s.last,
    )


def event_to_pb(e: ev.WatchEvent) -> pb.WatchEvent:
    out = pb.WatchEvent(seq=e.seq, at=ts_to_pb(e.at), resync=e.resync)
    b = e.body
    if isinstance(b, ev.Snapshot):
        out.snapshot.CopyFrom(snapshot_to_pb(b))
    elif isinstance(b, ev.TaskEvent):
        out.task.CopyFrom(pb.TaskEvent(kind=_TASK_KIND_TO_PB[b.kind], task=task_to_pb(b.task)))
    elif isinstance(b, ev.ProgressEvent):
        out.progress.CopyFrom(
            pb.ProgressEvent(task_id=b.task_id, attempt=b.attempt, progress=progress_to_pb(b.progress))
        )
    elif isinstance(b, ev.ExecutorEvent):
        out.executor.CopyFrom(
            pb.ExecutorEvent(kind=_EXEC_KIND_TO_PB[b.kind], executor=executor_to_pb(b.executor))
        )
    elif isinstance(b, ev.UsageEvent):
        out.usage.CopyFrom(pb.UsageEvent(executor=b.executor, sample=usage_to_pb(b.sample)))
    elif isinstance(b, ev.QueueEvent):
        out.queue.CopyFrom(queue_to_pb(b.queue))
    else:  # pragma: no cover - exhaustive over EventBody
        raise TypeError(f"unknown event body {type(b).__name__}")
    return out


def event_from_pb(e: pb.WatchEvent) -> ev.WatchEvent:
    which = e.WhichOneof("event")
    body: ev.EventBody
    if which == "snapshot":
        s = e.snapshot
        body = ev.Snapshot(
            tasks=[task_from_pb(t) for t in s.tasks],
            executors=[executor_from_pb(x) for x in s.executors],
            usage=[executor_usage_from_pb(u) for u in s.usage],
            queue=queue_from_pb(s.queue) if s.HasField("queue") else None,
            last=s.last,
        )
    elif which == "task":
        body = ev.TaskEvent(kind=_TASK_KIND_FROM_PB[e.task.kind], task=task_from_pb(e.task.task))
    elif which == "progress":
        body = ev.ProgressEvent(
            task_id=e.progress.task_id, attempt=e.progress.attempt, progress=progress_from_pb(e.progress.progress)
        )
    elif which == "executor":
        body = ev.ExecutorEvent(
            kind=_EXEC_KIND_FROM_PB[e.executor.kind], executor=executor_from_pb(e.executor.executor)
        )
    elif which == "usage":
        body = ev.UsageEvent(executor=e.usage.executor, sample=usage_from_pb(e.usage.sample))
    elif which == "queue":
        body = ev.QueueEvent(queue=queue_from_pb(e.queue))
    else:
        raise ValueError(f"watch event without a body (seq {e.seq})")
    return ev.WatchEvent(seq=e.seq, at=ts_from_pb(e, "at") or 0.0, body=body, resync=e.resync)


def specs_to_pb(specs: Iterable[m.TaskSpec]) -> list[cpb.TaskSpec]:
    return [spec_to_pb(s) for s in specs]
