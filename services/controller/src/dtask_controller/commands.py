"""Operator commands, one handler each: submit, cancel, retry, drain, pause and resume, and the task file."""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from dtask_common import events as ev
from dtask_common.models import (
    MAX_SUBMIT,
    ExecutorInfo,
    FieldError,
    QueueStatus,
    Task,
    TaskSpec,
    TaskState,
    validate_batch,
)

from dtask_controller import queries
from dtask_controller.deps import resolve_deps
from dtask_controller.effects import SchedulerError
from dtask_controller.errors import Conflict, InvalidTasks, NotFound, TooLarge

if TYPE_CHECKING:
    from dtask_controller.core import ControllerCore

log = logging.getLogger(__name__)


def _added(task: Task) -> ev.TaskEvent:
    return ev.TaskEvent(ev.TaskEventKind.ADDED, task)


def submit(core: ControllerCore, specs: Sequence[TaskSpec]) -> list[str]:
    """Validate the whole batch, then queue it in one transaction; returns the ids in order."""
    if len(specs) > MAX_SUBMIT:
        raise TooLarge(
            f"{len(specs)} tasks in one request; at most {MAX_SUBMIT} are accepted per call: "
            "split the batch into several submissions"
        )
    if not specs:
        raise InvalidTasks([FieldError("tasks", "the submission holds no task; give at least one")], 1)
    errors = validate_batch(specs)
    linked = any(s.depends_on for s in specs)
    if linked:
        deps, order, dep_errors = resolve_deps(specs, core.store.task_states)
        errors.extend(dep_errors)
    if errors:
        raise InvalidTasks(sorted(errors, key=lambda e: e.index), len(specs))
    now = core.clock()
    with core.change():
        ids = core.store.add_tasks(specs, [()] * len(specs), now)
        if core.fanout.active:
            for i, tid in enumerate(ids):
                core.publish(functools.partial(_added, Task(tid, specs[i], submitted_at=now)))
        if linked:
            _queue_linked(core, specs, ids, deps, order)
        else:  # nothing to resolve, nothing the scheduler can refuse: each task is ready
            add = core.scheduler.add
            for tid, spec in zip(ids, specs, strict=True):
                if effects := add(tid, spec):
                    core.apply(effects)
    log.info(
        "queued %d task%s: %s",
        len(ids),
        "" if len(ids) == 1 else "s",
        ids[0] if len(ids) == 1 else f"{ids[0]}-{ids[-1]}",
    )
    core.kick()
    return ids


def _queue_linked(
    core: ControllerCore, specs: Sequence[TaskSpec], ids: list[str], deps: list[list[str]], order: list[int]
) -> None:
    """Record the dependencies of a submission ('#index' or stored ids) and queue its tasks in topological order."""
    id_deps = [[ids[int(d[1:])] if d.startswith("#") else d for d in ds] for ds in deps]
    core.store.add_deps([(ids[i], d) for i in range(len(specs)) for d in id_deps[i]])
    for i in order:
        finished = core.store.task_states(d for d in id_deps[i] if d not in core.scheduler)
        core.apply(core.scheduler.add(ids[i], specs[i], id_deps[i], finished))


def queue_task_file(core: ControllerCore, path: str) -> None:
    """Queue the tasks of a task file once per store (a restart with the same file queues nothing new).

    Raises taskfile.TaskFileError for a file that cannot be read, InvalidTasks for tasks it rejects."""
    p = Path(path)
    digest = hashlib.sha256(p.read_bytes()).hexdigest()
    key = f"tasks_file:{p.absolute()}:{digest}"
    if core.store.get_meta(key):
        log.info(
            "task file %s already queued in this store (ids %s); not queuing it again", p, core.store.get_meta(key)
        )
        return
    from dtask_common import taskfile  # only a controller given a task file needs its parser

    specs = taskfile.load(p)
    with core.change():  # the tasks and the mark commit together: a failure between them stores neither
        ids = submit(core, specs)
        core.store.set_meta(key, f"{ids[0]}-{ids[-1]}" if ids else "-")
    log.info("task file %s: queued %d tasks", p, len(ids))


def cancel(core: ControllerCore, task_id: str) -> Task:
    if task_id not in core.scheduler:
        t = queries.stored_task(core, task_id)
        raise Conflict(
            f"task {task_id} already {t.state.value}; nothing to cancel "
            f"(RetryTask runs it again: dtask retry {task_id})"
        )
    running = core.scheduler.state(task_id) is TaskState.RUNNING
    core.apply(core.scheduler.cancel(task_id))
    if running:
        log.info("task %s: cancel sent to %s", task_id, queries.task(core, task_id).executor)
    return queries.task(core, task_id)


def retry(core: ControllerCore, task_id: str) -> Task:
    t = queries.stored_task(core, task_id)
    if task_id in core.scheduler:
        raise Conflict(f"task {task_id} is still {t.state.value}; retry it once it has finished, or cancel it")
    try:
        effects = core.scheduler.retry(task_id, t.spec, len(t.attempts))
    except SchedulerError as exc:
        raise Conflict(str(exc)) from None
    with core.change():
        core.store.set_task(task_id, TaskState.PENDING, error="", result=None, retries_used=0)
        core.finished_counts[t.state] -= 1
        core.tally.retries += 1
        core.apply(effects)
        core.task_event(ev.TaskEventKind.RETRIED, task_id)
    log.info("task %s queued again by an operator (was %s)", task_id, t.state.value)
    core.kick()
    return queries.task(core, task_id)


def drain(core: ControllerCore, name: str, undrain: bool = False) -> ExecutorInfo:
    if core.registry.get(name) is None:
        raise NotFound(f"no executor named {name!r}; list them with ListExecutors (dtask executors)")
    with core.change():
        core.store.set_executor_drained(name, not undrain)
        draining = core.registry.set_draining(name, not undrain)
    if core.scheduler.known_executor(name):
        core.scheduler.set_draining(name, draining)
    log.info("executor %s %s", name, "takes work again" if undrain else "draining: no new work")
    core.publish_now(lambda: core.executor_event(ev.ExecutorEventKind.UPDATED, name))
    core.kick()
    return queries.executor(core, name)


def set_paused(core: ControllerCore, paused: bool) -> QueueStatus:
    """Pause (nothing is dispatched) or resume the queue."""
    with core.change():
        core.store.set_meta("paused", "1" if paused else "0")
        core.scheduler.paused = paused
        core.publish(lambda: ev.QueueEvent(queries.queue(core)))
    log.info("queue %s", "paused: nothing is dispatched" if paused else "resumed")
    core.kick()
    return queries.queue(core)
