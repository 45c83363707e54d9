"""The scheduler's record of one active task, and how a failed dependency is worded (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass

from dtask_common.models import TaskState

from dtask_controller.placement import Shape


@dataclass(slots=True)
class TaskEntry:
    """The scheduler's record of one active task: its place in the queue, its attempts, where it runs."""

    id: str
    seq: int
    priority: int
    shape: Shape
    max_retries: int
    attempts: int = 0
    retries_used: int = 0
    state: TaskState = TaskState.PENDING
    unmet: set[str] | frozenset[str] = frozenset()  # a set only while it waits on some (most never do: no set each)
    executor: str = ""
    gpu_ids: tuple[int, ...] = ()
    cancel_requested: bool = False
    lost: tuple[int, str, tuple[int, ...], bool] | None = None  # attempt, executor, gpus, used a retry


def dep_error(dep: str, state: TaskState | None) -> str:
    """Why a task fails when one of its dependencies ended without success."""
    what = state.value if state else "unknown"
    return f"dependency failed: task {dep} is {what}"
