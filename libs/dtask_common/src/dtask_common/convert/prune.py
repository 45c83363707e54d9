"""Conversion of a prune's request and result."""

from __future__ import annotations

from dtask.v1 import controller_pb2 as pb

from dtask_common import models as m
from dtask_common.convert.scalars import state_from_pb, state_to_pb, ts_from_pb, ts_to_pb


def prune_request_to_pb(r: m.PruneRequest) -> pb.PruneRequest:
    return pb.PruneRequest(
        finished_before=ts_to_pb(r.finished_before), tag=r.tag, dry_run=r.dry_run, list_limit=r.list_limit
    )


def prune_request_from_pb(msg: pb.PruneRequest) -> m.PruneRequest:
    """ValueError when finished_before is missing or list_limit is negative."""
    before = ts_from_pb(msg, "finished_before")
    if before is None:
        raise ValueError("finished_before is required: prune tasks that finished before when?")
    if msg.list_limit < 0:
        raise ValueError(f"list_limit must be >= 0, got {msg.list_limit}")
    return m.PruneRequest(before, msg.tag, msg.dry_run, msg.list_limit)


def prune_result_to_pb(r: m.PruneResult) -> pb.PruneResponse:
    return pb.PruneResponse(
        count=r.count,
        tasks=[pb.PrunedTask(id=t.id, name=t.name, state=state_to_pb(t.state)) for t in r.tasks],
        kept_as_dependencies=r.kept_as_dependencies,
        dry_run=r.dry_run,
        freed_bytes=r.freed_bytes,
    )


def prune_result_from_pb(msg: pb.PruneResponse) -> m.PruneResult:
    return m.PruneResult(
        count=msg.count,
        tasks=tuple(m.PrunedTask(t.id, t.name, state_from_pb(t.state)) for t in msg.tasks),
        kept_as_dependencies=msg.kept_as_dependencies,
        dry_run=msg.dry_run,
        freed_bytes=msg.freed_bytes,
    )
