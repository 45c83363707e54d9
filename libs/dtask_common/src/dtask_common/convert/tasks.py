"""Conversion of task specs, tasks, attempts and their results, progress, output and the queue."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from dtask.v1 import common_pb2 as cpb
from dtask.v1 import controller_pb2 as pb

from dtask_common import models as m
from dtask_common.convert.executors import attempt_usage_from_pb, attempt_usage_to_pb
from dtask_common.convert.metrics import metrics_from_pb, metrics_to_pb
from dtask_common.convert.params import params_from_pb, params_to_pb
from dtask_common.convert.scalars import (
    opt,
    result_from_pb,
    result_to_pb,
    set_fields_from_pb,
    state_from_pb,
    state_to_pb,
    ts_from_pb,
    ts_to_pb,
)
from dtask_common.models.specs import set_fields


def resources_to_pb(r: m.Resources) -> cpb.Resources:
    return cpb.Resources(cpus=float(r.cpus), memory_mb=int(r.memory_mb), gpus=int(r.gpus))


def resources_from_pb(r: cpb.Resources) -> m.Resources:
    return m.Resources(cpus=r.cpus, memory_mb=r.memory_mb, gpus=r.gpus)


def spec_to_pb(s: m.TaskSpec) -> cpb.TaskSpec:
    """The spec as a message: only the fields it sets are passed (an empty field is the message's default), resources
    always (an empty Resources is still sent). Building all nineteen took 12 us; a task event carries its spec."""
    kw = set_fields(s)
    if "timeout_s" in kw:
        kw["timeout_s"] = float(kw["timeout_s"])
    if "lost_after_s" in kw:
        kw["lost_after_s"] = float(kw["lost_after_s"])
    if "params" in kw:
        kw["params"] = params_to_pb(kw["params"])
    r = s.resources
    kw["resources"] = cpb.Resources() if not (r.cpus or r.memory_mb or r.gpus) else resources_to_pb(r)
    return cpb.TaskSpec(**kw)


# How each set field of a TaskSpec message becomes the model's (None: as it is). ListFields gives the set fields
# only: a typical spec sets three of its nineteen, and reading an unset repeated or map field builds an empty
# container each time (spec_from_pb took 11 us a task when it read all of them; every submitted task takes it).
_SPEC_FIELDS: dict[str, Callable[[Any], Any] | None] = {
    "name": None,
    "argv": tuple,
    "shell": None,
    "cwd": None,
    "env": dict,
    "resources": resources_from_pb,
    "labels": dict,
    "priority": None,
    "max_retries": None,
    "timeout_s": None,
    "depends_on": tuple,
    "tags": tuple,
    "progress": None,  # unset: the model's "auto"
    "progress_pattern": None,
    "result_marker": None,
    "lost_after_s": None,
    "params": params_from_pb,
    "venv": None,
    "conda": None,
}


def spec_from_pb(s: cpb.TaskSpec) -> m.TaskSpec:
    return m.TaskSpec(**set_fields_from_pb(s, _SPEC_FIELDS))


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
        epoch=p.epoch,
        epochs=p.epochs,
    )


def progress_from_pb(p: cpb.Progress) -> m.Progress:
    return m.Progress(
        label=p.label,
        step=p.step,
        total=opt(p, "total"),
        percent=opt(p, "percent"),
        rate=opt(p, "rate"),
        elapsed_s=opt(p, "elapsed_s"),
        eta_s=opt(p, "eta_s"),
        updated_at=ts_from_pb(p, "updated_at"),
        epoch=opt(p, "epoch"),
        epochs=opt(p, "epochs"),
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
        metrics=metrics_to_pb(a.metrics),
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
        exit_code=opt(a, "exit_code"),
        signal=opt(a, "signal"),
        error=a.error,
        result=result_from_pb(a, "result"),
        peak_rss_bytes=a.peak_rss_bytes,
        cpu_time_s=a.cpu_time_s,
        duration_s=a.duration_s,
        metrics=metrics_from_pb(a.metrics),
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
        usage=attempt_usage_to_pb(t.usage) if t.usage else None,
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
        usage=attempt_usage_from_pb(t.usage) if t.HasField("usage") else None,
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
        exit_code=opt(r, "exit_code"),
        signal=opt(r, "signal"),
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
    return output_into_pb(c, pb.OutputChunk())


def output_into_pb(c: m.OutputChunk, out: pb.OutputChunk) -> pb.OutputChunk:
    """Fill out (in place, e.g. a RunnerMessage's output) with the chunk, and return it.

    A chunk holds up to a MiB: set in place it is copied once. Built apart and passed to the parent's
    constructor, it is merged in, which costs about 100 times as much for data this large (upb)."""
    out.task_id = c.task_id
    out.attempt = c.attempt
    out.offset = c.offset
    out.data = c.data
    out.notice = c.notice
    out.total_bytes = c.total_bytes
    return out


def output_from_pb(c: pb.OutputChunk) -> m.OutputChunk:
    return m.OutputChunk(
        task_id=c.task_id, attempt=c.attempt, offset=c.offset, data=c.data, notice=c.notice, total_bytes=c.total_bytes
    )


def specs_to_pb(specs: Iterable[m.TaskSpec]) -> list[cpb.TaskSpec]:
    return [spec_to_pb(s) for s in specs]
