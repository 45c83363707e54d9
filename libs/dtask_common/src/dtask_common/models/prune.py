"""Pruning finished tasks: what to delete (PruneRequest) and what was deleted (PruneResult)."""

from __future__ import annotations

from dataclasses import dataclass

from dtask_common.models.tasks import TaskState


@dataclass(frozen=True, slots=True)
class PruneRequest:
    """Delete finished tasks that finished before finished_before (seconds since the epoch), of one tag if
    given; dry_run deletes nothing; list_limit: how many of them to name in the result."""

    finished_before: float
    tag: str = ""
    dry_run: bool = False
    list_limit: int = 20


@dataclass(frozen=True, slots=True)
class PrunedTask:
    """A task a prune deleted (or would delete)."""

    id: str
    name: str
    state: TaskState


@dataclass(frozen=True, slots=True)
class PruneResult:
    """What a prune deleted (or, in a dry run, would delete)."""

    count: int
    tasks: tuple[PrunedTask, ...] = ()  # the first list_limit, by id
    kept_as_dependencies: int = 0  # matching tasks kept because a pending or running task depends on them
    dry_run: bool = False
    freed_bytes: int = 0  # how much the store file shrank
