"""A runner (re)connects: what it reports against what the controller holds — keep, take back, stop, lose."""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from dtask_common import events as ev
from dtask_common.models import AttemptResult, TaskState

from dtask_controller.runner_messages import CancelCmd, Hello, Session
from dtask_controller.scheduler import Scheduler

if TYPE_CHECKING:
    from dtask_controller.core import ControllerCore

log = logging.getLogger(__name__)


class Verdict(enum.Enum):
    """What becomes of an attempt a returning runner says it still runs."""

    KEEP = "keep"  # the task's current attempt there: it carries on
    STOP_ASKED = "stop-asked"  # current, but an operator asked to cancel it meanwhile
    TAKE_BACK = "take-back"  # lost while out of touch, nothing newer started: it runs on as the task's attempt
    STOP = "stop"  # superseded (a newer attempt runs) or its task ended: the runner stops it


def verdict(scheduler: Scheduler, executor: str, task_id: str, attempt: int) -> Verdict:
    """Pure: the fate of one attempt reported running by `executor`."""
    if (
        scheduler.state(task_id) is TaskState.RUNNING
        and scheduler.current_attempt(task_id) == attempt
        and (task_id, attempt) in set(scheduler.running_on(executor))
    ):
        return Verdict.STOP_ASKED if scheduler.cancel_requested(task_id) else Verdict.KEEP
    if scheduler.adoptable(task_id, attempt, executor):
        return Verdict.TAKE_BACK
    return Verdict.STOP


def missing_reason(executor: str, attempt: int, same_process: bool) -> str:
    if same_process:
        return f"executor {executor} never got attempt {attempt} (the assignment was lost with its session)"
    return f"executor {executor} did not report attempt {attempt} when it reconnected (its runner restarted)"


def take_back(core: ControllerCore, executor: str, task_id: str, attempt: int) -> bool:
    """Adopt a LOST attempt whose runner is back with it (inside a change): running again, same number,
    executor and GPUs, the retry its loss used given back, its output tail held again; one task event."""
    if not core.scheduler.adopt(task_id, attempt, executor):
        return False
    retries = core.scheduler.retries_used(task_id)
    core.store.reopen_attempt(task_id, attempt, executor, retries)
    core.tails.open(task_id, attempt, *(core.store.output(task_id, attempt) or (0, b"")))
    core.deaths.returned(task_id, attempt)
    core.task_event(ev.TaskEventKind.UPDATED, task_id)
    core.after(
        lambda: log.info(
            "task %s attempt %d taken back: executor %s returned with it still running "
            "(the retry its loss used is given back)",
            task_id,
            attempt,
            executor,
        )
    )
    return True


def reconnect(
    core: ControllerCore, hello: Hello, session: Session, record: Callable[[AttemptResult], None]
) -> tuple[tuple[str, int, int], ...]:
    """Reconcile a runner's Hello (inside a change, before anything new is sent to it; record applies a
    result it reports); returns the output offsets of every attempt of the Hello the controller keeps
    (the runner sends on from there)."""
    name, sched = hello.name, core.scheduler
    given = sched.running_on(name)  # what the runner should know of (not what its results free, below)
    key = f"runner_instance:{name}"
    same_process = bool(hello.instance_id) and core.store.get_meta(key) == hello.instance_id
    if hello.instance_id:
        core.store.set_meta(key, hello.instance_id)
    for r in hello.running:  # first: what it still runs counts against its capacity before anything new
        match verdict(sched, name, r.task_id, r.attempt):
            case Verdict.KEEP:
                pass
            case Verdict.STOP_ASKED:
                core.after(lambda r=r: session.send(CancelCmd(r.task_id, r.attempt, "cancelled by an operator")))
            case Verdict.TAKE_BACK:
                take_back(core, name, r.task_id, r.attempt)
            case Verdict.STOP:
                _stop(core, name, session, r.task_id, r.attempt)
    for res in hello.unreported:
        record(res)
    running = {(r.task_id, r.attempt) for r in hello.running}
    reported = running | {(r.task_id, r.attempt) for r in hello.unreported}
    for tid, attempt in given:
        if (tid, attempt) not in reported:
            give_up = not same_process and core.deaths.died(tid, attempt)
            why = core.deaths.message(tid) if give_up else missing_reason(name, attempt, same_process)
            core.apply(sched.attempt_lost(tid, attempt, why, never_started=same_process, give_up=give_up))
    return tuple(
        (tid, attempt, tail.end)
        for tid, attempt in sorted(reported)
        if (tail := core.tails.get(tid, attempt)) is not None
        and ((tid, attempt) in running or tail.awaited_from == name)
    )


def _stop(core: ControllerCore, name: str, session: Session, task_id: str, attempt: int) -> None:
    """The runner stops an attempt that is no longer the task's; its resources stay held until it reports."""
    core.deaths.returned(task_id, attempt)
    task = core.store.get_task(task_id)
    gpus = next((a.gpu_ids for a in task.attempts if a.number == attempt), ()) if task else ()
    core.scheduler.hold(name, (task_id, attempt), task.spec if task else None, gpus)
    core.after(lambda: session.send(CancelCmd(task_id, attempt, "this attempt is not current on the controller")))
    core.after(
        lambda: log.info("task %s attempt %d on %s is superseded or ended: stopping it there", task_id, attempt, name)
    )
