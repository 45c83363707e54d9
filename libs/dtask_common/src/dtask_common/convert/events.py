"""Conversion of watch events (the snapshot and the changes a controller streams to its watchers) and of the
Watch request's filter."""

from __future__ import annotations

from typing import TypeVar, assert_never

from dtask.v1 import controller_pb2 as pb

from dtask_common import events as ev
from dtask_common.convert.executors import (
    executor_from_pb,
    executor_to_pb,
    executor_usage_from_pb,
    executor_usage_to_pb,
    usage_from_pb,
    usage_into_pb,
)
from dtask_common.convert.metrics import metrics_from_pb, metrics_to_pb
from dtask_common.convert.scalars import state_from_pb, state_to_pb, ts_from_pb, ts_into_pb
from dtask_common.convert.tasks import (
    progress_from_pb,
    progress_to_pb,
    queue_from_pb,
    queue_to_pb,
    task_from_pb,
    task_to_pb,
)
from dtask_common.models import TaskState, WatchFilter

K = TypeVar("K", ev.TaskEventKind, ev.ExecutorEventKind)

_TASK_KIND_TO_PB = {k: getattr(pb.TaskEvent, f"KIND_{k.name}") for k in ev.TaskEventKind}
_TASK_KIND_FROM_PB = {v: k for k, v in _TASK_KIND_TO_PB.items()}
_EXEC_KIND_TO_PB = {k: getattr(pb.ExecutorEvent, f"KIND_{k.name}") for k in ev.ExecutorEventKind}
_EXEC_KIND_FROM_PB = {v: k for k, v in _EXEC_KIND_TO_PB.items()}


def snapshot_to_pb(s: ev.Snapshot) -> pb.Snapshot:
    return pb.Snapshot(
        tasks=[task_to_pb(t) for t in s.tasks],
        executors=[executor_to_pb(e) for e in s.executors],
        usage=[executor_usage_to_pb(u) for u in s.usage],
        queue=queue_to_pb(s.queue) if s.queue else None,
        last=s.last,
    )


def event_to_pb(e: ev.WatchEvent) -> pb.WatchEvent:
    out = pb.WatchEvent()
    event_into_pb(out, e)
    return out


def event_into_pb(out: pb.WatchEvent, e: ev.WatchEvent) -> None:
    """event_to_pb(e), written into an empty message (one of a batch's: nothing to copy in)."""
    out.seq = e.seq
    ts_into_pb(out.at, e.at)
    if e.resync:
        out.resync = True
    b = e.body
    match b:
        case ev.Snapshot():
            out.snapshot.CopyFrom(snapshot_to_pb(b))
        case ev.TaskEvent():
            out.task.CopyFrom(pb.TaskEvent(kind=_TASK_KIND_TO_PB[b.kind], task=task_to_pb(b.task)))
        case ev.ProgressEvent():
            out.progress.CopyFrom(
                pb.ProgressEvent(
                    task_id=b.task_id,
                    attempt=b.attempt,
                    progress=progress_to_pb(b.progress) if b.progress is not None else None,
                    metrics=metrics_to_pb(b.metrics),
                )
            )
        case ev.ExecutorEvent():
            out.executor.CopyFrom(pb.ExecutorEvent(kind=_EXEC_KIND_TO_PB[b.kind], executor=executor_to_pb(b.executor)))
        case ev.UsageEvent():
            out.usage.executor = b.executor
            usage_into_pb(out.usage.sample, b.sample)
        case ev.QueueEvent():
            out.queue.CopyFrom(queue_to_pb(b.queue))
        case _:
            assert_never(b)


def _kind(table: dict[int, K], value: int, what: str) -> K:
    try:
        return table[value]
    except KeyError:
        raise ValueError(f"unknown {what} event kind {value}; is the controller newer than this client?") from None


def event_from_pb(e: pb.WatchEvent) -> ev.WatchEvent:
    """A watch event; raises ValueError for one without a body, or of a kind this version does not know."""
    which = e.WhichOneof("event")
    body: ev.EventBody
    match which:
        case "snapshot":
            s = e.snapshot
            body = ev.Snapshot(
                tasks=[task_from_pb(t) for t in s.tasks],
                executors=[executor_from_pb(x) for x in s.executors],
                usage=[executor_usage_from_pb(u) for u in s.usage],
                queue=queue_from_pb(s.queue) if s.HasField("queue") else None,
                last=s.last,
            )
        case "task":
            body = ev.TaskEvent(kind=_kind(_TASK_KIND_FROM_PB, e.task.kind, "task"), task=task_from_pb(e.task.task))
        case "progress":
            body = ev.ProgressEvent(
                task_id=e.progress.task_id,
                attempt=e.progress.attempt,
                progress=progress_from_pb(e.progress.progress) if e.progress.HasField("progress") else None,
                metrics=metrics_from_pb(e.progress.metrics),
            )
        case "executor":
            body = ev.ExecutorEvent(
                kind=_kind(_EXEC_KIND_FROM_PB, e.executor.kind, "executor"),
                executor=executor_from_pb(e.executor.executor),
            )
        case "usage":
            body = ev.UsageEvent(executor=e.usage.executor, sample=usage_from_pb(e.usage.sample))
        case "queue":
            body = ev.QueueEvent(queue=queue_from_pb(e.queue))
        case "batch":
            raise ValueError(f"a batch of watch events (seq {e.seq}): read it with events_from_pb")
        case None:
            raise ValueError(f"watch event without a body (seq {e.seq})")
        case _:
            raise ValueError(f"unknown watch event {which!r} (seq {e.seq})")
    return ev.WatchEvent(seq=e.seq, at=ts_from_pb(e, "at") or 0.0, body=body, resync=e.resync)


def events_from_pb(e: pb.WatchEvent) -> list[ev.WatchEvent]:
    """The events of one message, in order: those of a batch, else the one (ValueError as event_from_pb)."""
    if e.WhichOneof("event") == "batch":
        return [event_from_pb(x) for x in e.batch.events]
    return [event_from_pb(e)]


_STATE_NAMES = ", ".join(s.name for s in TaskState)


def watch_filter_to_pb(f: WatchFilter) -> pb.WatchRequest:
    return pb.WatchRequest(
        exclude_usage=f.exclude_usage,
        exclude_progress=f.exclude_progress,
        task_ids=list(f.task_ids),
        states=[state_to_pb(s) for s in sorted(f.states)],
        tag=f.tag,
        executor=f.executor,
        finished_limit=f.finished_limit,
        exclude_executors=f.exclude_executors,
        max_batch=f.max_batch,
        exclude_unfinished=f.exclude_unfinished,
    )


def watch_filter_from_pb(r: pb.WatchRequest) -> WatchFilter:
    """The filter of a request; ValueError (saying what to send instead) for an unknown state or a bad value."""
    states = set()
    for v in r.states:
        try:
            states.add(state_from_pb(v))
        except ValueError:
            raise ValueError(f"unknown task state {v} in states; use {_STATE_NAMES}") from None
    return WatchFilter(
        task_ids=tuple(r.task_ids),
        states=frozenset(states),
        tag=r.tag,
        executor=r.executor,
        finished_limit=r.finished_limit,
        exclude_usage=r.exclude_usage,
        exclude_progress=r.exclude_progress,
        exclude_executors=r.exclude_executors,
        max_batch=r.max_batch,
        exclude_unfinished=r.exclude_unfinished,
    )
