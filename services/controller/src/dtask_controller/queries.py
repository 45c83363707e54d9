"""What the servicer and the streams read of the core: tasks, executors, usage, output, Watch pieces."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from dtask_common import runner_paths
from dtask_common.models import (
    AttemptUsage,
    ExecutorInfo,
    ExecutorState,
    ExecutorUsage,
    ParamValue,
    QueueStatus,
    Task,
    TaskState,
    WatchFilter,
)

from dtask_controller.errors import NotFound
from dtask_controller.fanout import Watcher
from dtask_controller.output import Tail
from dtask_controller.runner_messages import Session
from dtask_controller.store import SnapshotPages

if TYPE_CHECKING:
    from dtask_controller.core import ControllerCore


def queue(core: ControllerCore) -> QueueStatus:
    running = core.scheduler.running_count()
    pending = len(core.scheduler) - running
    f = core.finished_counts
    return QueueStatus(
        paused=core.scheduler.paused,
        pending=pending,
        running=running,
        succeeded=f.get(TaskState.SUCCEEDED, 0),
        failed=f.get(TaskState.FAILED, 0),
        cancelled=f.get(TaskState.CANCELLED, 0),
        lost=f.get(TaskState.LOST, 0),
    )


def stored_task(core: ControllerCore, task_id: str) -> Task:
    """The task as stored (no in-memory overlay); NotFound when there is none."""
    t = core.store.get_task(task_id)
    if t is None:
        raise NotFound(f"no task with id {task_id!r}; list tasks with ListTasks (dtask tasks)")
    return t


def task(core: ControllerCore, task_id: str) -> Task:
    return overlay(core, stored_task(core, task_id))


def overlay(core: ControllerCore, t: Task) -> Task:
    """Put the latest in-memory progress on a task read from the store, and why it waits for a runner path."""
    p = core.progress.get(t.id)
    if p is not None and t.state is TaskState.RUNNING:
        t.progress = p
    series = core.metrics.get(t.id)
    if series and t.state is TaskState.RUNNING and t.attempts:
        t.attempts = [*t.attempts[:-1], replace(t.attempts[-1], metrics=series.points())]
    if t.state is TaskState.RUNNING and (away := core.registry.out_of_touch(t.executor)) is not None:
        t.stale_since = away[0]
    if t.state is TaskState.RUNNING and t.current is not None:
        t.usage = attempt_usage(core, t.executor, t.id, t.current.number)
    if t.state is TaskState.PENDING and not t.error and (names := runner_paths.path_names(t.spec)):
        t.error = core.registry.paths_wanting(names)  # why it waits (a missing path is a missing label)
    return t


def attempt_usage(core: ControllerCore, executor: str, task_id: str, attempt: int) -> AttemptUsage | None:
    """The latest usage the executor sampled of this attempt of a task, if any."""
    rec = core.registry.get(executor)
    if rec is None or not rec.usage:
        return None
    return next((a for a in rec.usage[-1].attempts if a.task_id == task_id and a.attempt == attempt), None)


def list_tasks(
    core: ControllerCore,
    *,
    states: Sequence[TaskState],
    tag: str,
    executor: str,
    name_contains: str,
    after: int,
    limit: int,
    name_prefix: str = "",
    params: Mapping[str, ParamValue] | None = None,
) -> tuple[list[Task], int]:
    """A page of the stored tasks that match (ids above `after`, at most `limit`) and how many match in all."""
    # Filtered by state alone (or not at all), the total is the queue's counts: counting a million rows would
    # take longer than reading the page.
    known = not (tag or executor or name_contains or name_prefix or params)
    tasks, total = core.store.list_tasks(
        states=states,
        tag=tag,
        executor=executor,
        name_contains=name_contains,
        after=after,
        limit=limit,
        count=not known,
        name_prefix=name_prefix,
        params=params,
    )
    if known:
        q = queue(core)
        per_state = {
            TaskState.PENDING: q.pending,
            TaskState.RUNNING: q.running,
            TaskState.SUCCEEDED: q.succeeded,
            TaskState.FAILED: q.failed,
            TaskState.CANCELLED: q.cancelled,
            TaskState.LOST: q.lost,
        }
        total = sum(per_state[s] for s in set(states)) if states else sum(per_state.values())
    return [overlay(core, t) for t in tasks], total


def executor(core: ControllerCore, name: str) -> ExecutorInfo:
    if core.registry.get(name) is None:
        raise NotFound(f"no executor named {name!r}; list them with ListExecutors (dtask executors)")
    return core.registry.info(name, tuple(t for t, _ in core.scheduler.running_on(name)))


def executors(core: ControllerCore, include_gone: bool = False) -> list[ExecutorInfo]:
    out = [executor(core, n) for n in core.registry.names()]
    return [e for e in out if include_gone or e.state is not ExecutorState.GONE]


def usage(core: ControllerCore, name: str, history: int) -> ExecutorUsage:
    """The executor's latest usage samples (at most `history`)."""
    return core.registry.usage(name, history)


def output_tail(core: ControllerCore, task_id: str, attempt: int) -> Tail | None:
    """The output tail held in memory of an attempt (running, or ended with output still to come)."""
    return core.tails.get(task_id, attempt)


def stored_output(core: ControllerCore, task_id: str, attempt: int) -> tuple[int, bytes] | None:
    """(offset of the first byte, bytes) of an attempt's output as stored."""
    return core.store.output(task_id, attempt)


def runner_session(core: ControllerCore, name: str) -> tuple[Session | None, str]:
    """The session of the executor while it is connected and in touch (output reads go down it), else why not."""
    session = core.sessions.get(name) if name else None
    if session is None:
        return None, f"runner {name or '?'} is not connected"
    if core.registry.out_of_touch(name) is not None:
        return None, f"runner {name} is out of touch"
    return session, ""


def task_changed(core: ControllerCore, task_id: str) -> asyncio.Event:
    """An event set the next time the task changes (dispatched, finished, requeued, ...)."""
    event = core.task_waiters.get(task_id)
    if event is None:
        event = core.task_waiters[task_id] = asyncio.Event()
    return event


def snapshot_pages(core: ControllerCore, page_size: int, select: WatchFilter | None = None) -> SnapshotPages:
    """Every stored task (or those select chooses) in pages, from one consistent read of the store that lasts
    until the pages are closed or exhausted; a selection's ids are read at once (pages.ids), the first page
    on the first next()."""
    return core.store.read_snapshot(page_size, select)


def event_seq(core: ControllerCore) -> int:
    """The sequence number of the latest published event."""
    return core.fanout.seq


def subscribe(core: ControllerCore, select: WatchFilter) -> Watcher:
    return core.fanout.subscribe(watch=select)


def unsubscribe(core: ControllerCore, w: Watcher) -> None:
    core.fanout.unsubscribe(w)


class CoreOwners:
    """Who an attempt was dispatched to, read from the scheduler (running attempts) and the store (every
    recorded attempt); the ownership.Owners a runner session checks its reports against."""

    def __init__(self, core: ControllerCore):
        self._core = core

    def running_executor(self, task_id: str, attempt: int) -> str:
        return self._core.scheduler.executor_of(task_id, attempt)

    def recorded_executor(self, task_id: str, attempt: int) -> str | None:
        return self._core.store.attempt_executor(task_id, attempt)

    def task_known(self, task_id: str) -> bool:
        return task_id in self._core.scheduler or (
            task_id.isdecimal() and len(task_id) <= 18 and self._core.store.has_task(task_id)
        )
