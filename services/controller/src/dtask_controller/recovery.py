"""Recovery: the scheduler and the executor registry rebuilt from the store (at start, or after a failed commit)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from dtask_common.depgraph import topological_order
from dtask_common.models import FINISHED_STATES, TaskState

if TYPE_CHECKING:
    from dtask_controller.core import ControllerCore

log = logging.getLogger(__name__)


def restore(core: ControllerCore) -> None:
    """Rebuild the in-memory state from the store (start or restart)."""
    running_on, pending = reload(core)
    for name, _seen, cap, labels, address, version, drained in core.store.executors():
        core.registry.restore(name)
        rec = core.registry.get(name)
        if rec is not None:
            rec.capacity, rec.labels, rec.address, rec.version = cap, labels, address, version
            rec.drained = drained
            if name not in running_on:
                rec.gone = True
    for name in running_on:
        core.registry.restore(name)  # no-op when known; else it gets lost_after_s to come back
    log.info(
        "store %s: %d pending, %d running on %d executors, %d finished%s",
        core.store.path,
        pending,
        sum(len(core.scheduler.running_on(n)) for n in running_on),
        len(running_on),
        sum(core.finished_counts.values()),
        " (queue paused)" if core.scheduler.paused else "",
    )


def reload(core: ControllerCore) -> tuple[set[str], int]:
    """Counts, the pause and the store's pending and running tasks into the (empty) scheduler;
    returns (executors running some, how many are pending)."""
    counts = core.store.counts()
    core.finished_counts = {s: counts[s] for s in FINISHED_STATES}
    core.scheduler.paused = core.store.get_meta("paused") == "1"
    sched = core.scheduler
    running_on: set[str] = set()
    active = list(core.store.active_tasks())
    for t in active:
        if t.state is TaskState.RUNNING:
            sched.restore_running(t.id, t.spec, t.attempts, t.executor, t.gpu_ids, t.retries_used)
            stored = core.store.output(t.id, t.attempts)
            core.tails.open(t.id, t.attempts, *(stored or (0, b"")))
            running_on.add(t.executor)
    waiting = {t.id: t for t in active if t.state is TaskState.PENDING}
    outside = {d for t in waiting.values() for d in t.deps if d not in waiting and d not in sched}
    finished = core.store.task_states(outside)
    # Dependencies first: a task may depend on a later one of its submission.
    order, _cycles = topological_order({tid: t.deps for tid, t in waiting.items()})
    for tid in order:
        t = waiting[tid]
        core.apply(sched.add(t.id, t.spec, t.deps, finished, t.attempts, t.retries_used))
        if t.lost is not None:
            sched.restore_lost(t.id, t.attempts, t.lost[0], t.gpu_ids, t.lost[1])
    return running_on, len(waiting)
