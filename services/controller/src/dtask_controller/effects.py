"""What the scheduler decides: effects the core applies (commit, then tell runners and watchers), and its errors."""

from __future__ import annotations

from dataclasses import dataclass

from dtask_common.models import TaskState


@dataclass(frozen=True, slots=True)
class Dispatch:
    """Start attempt `attempt` of a task on an executor with these GPUs."""

    task_id: str
    attempt: int
    executor: str
    gpu_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Finished:
    """A task reached a final state (the attempt, when any, ended as attempt_state)."""

    task_id: str
    state: TaskState
    error: str = ""
    attempt: int = 0
    attempt_state: TaskState | None = None


@dataclass(frozen=True, slots=True)
class Requeued:
    """An attempt ended (failed or lost) and the task went back to the queue."""

    task_id: str
    attempt: int
    attempt_state: TaskState
    error: str = ""


@dataclass(frozen=True, slots=True)
class CancelAttempt:
    """Ask the executor running this attempt to stop it."""

    task_id: str
    attempt: int
    executor: str


@dataclass(frozen=True, slots=True)
class Stale:
    """A report about an attempt that is not the task's current running one (fenced off)."""

    task_id: str
    attempt: int
    reason: str


Effect = Dispatch | Finished | Requeued | CancelAttempt | Stale


class SchedulerError(Exception):
    """A command that does not fit the task's state; the message says what to do."""


class UnknownTask(SchedulerError):
    """The task is not active in the scheduler."""
