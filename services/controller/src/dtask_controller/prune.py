"""Prune: delete finished tasks from the store, tell watchers (a fresh snapshot), give the freed pages back to the
disk in small steps (the controller keeps serving meanwhile); and the automatic prune of controller.retention_days."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from dtask_common.models import PrunedTask, PruneRequest, PruneResult, TaskState

if TYPE_CHECKING:
    from dtask_controller.core import ControllerCore

log = logging.getLogger(__name__)

VACUUM_PAGES = 1024  # pages given back per event-loop turn (4 MiB of 4 KiB pages)
AUTO_PRUNE_INTERVAL_S = 3600.0
DAY_S = 86400.0


async def prune(core: ControllerCore, req: PruneRequest) -> PruneResult:
    """Delete (unless dry_run) the finished tasks req selects, except those a pending or running task needs."""
    found, kept = core.store.prunable(req.finished_before, req.tag)
    listed = tuple(PrunedTask(tid, name, state) for tid, name, state in found[: req.list_limit])
    if req.dry_run or not found:
        return PruneResult(len(found), listed, kept, dry_run=req.dry_run)
    before = core.store.file_bytes()
    with core.change():
        core.store.delete_tasks([tid for tid, _name, _state in found])
        core.after(lambda: _forget(core, found))
    log.info(
        "pruned %d finished task%s (%s)%s; %d kept because active tasks depend on them",
        len(found),
        "" if len(found) == 1 else "s",
        found[0][0] if len(found) == 1 else f"ids {found[0][0]}-{found[-1][0]}",
        f" tagged {req.tag}" if req.tag else "",
        kept,
    )
    while core.store.vacuum_step(VACUUM_PAGES):
        await asyncio.sleep(0)  # other calls and reports go on between the steps
    core.store.checkpoint()
    return PruneResult(len(found), listed, kept, False, max(0, before - core.store.file_bytes()))


def _forget(core: ControllerCore, found: Sequence[tuple[str, str, TaskState]]) -> None:
    """Once the deletion committed: the counts lose the tasks, watchers are sent a fresh snapshot."""
    for tid, _name, state in found:
        if core.finished_counts.get(state, 0) > 0:
            core.finished_counts[state] -= 1
        core.live.drop(tid)
    core.tally.pruned += len(found)
    core.fanout.resync_all()


async def auto_prune(core: ControllerCore, retention_days: float) -> None:
    """Prune what finished more than retention_days ago, at start and once an hour (until cancelled)."""
    while True:
        try:
            result = await prune(core, PruneRequest(core.clock() - retention_days * DAY_S, list_limit=0))
            if result.count:
                log.info(
                    "automatic prune (controller.retention_days = %g): %d tasks deleted, %d bytes freed",
                    retention_days,
                    result.count,
                    result.freed_bytes,
                )
        except Exception:
            log.exception("automatic prune failed")
        await asyncio.sleep(AUTO_PRUNE_INTERVAL_S)
