"""What the store gives back besides tasks: active tasks to rebuild the scheduler, and executors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from dtask_common.models import Capacity, TaskSpec, TaskState


@dataclass(frozen=True, slots=True)
class ActiveTask:
    """A pending or running task as stored, to rebuild the scheduler after a restart."""

    id: str
    spec: TaskSpec
    state: TaskState
    attempts: int
    retries_used: int
    executor: str
    gpu_ids: tuple[int, ...]
    deps: tuple[str, ...]
    lost: tuple[str, bool] | None = None  # pending after its latest attempt was lost: (its executor, used a retry)


class StoredExecutor(NamedTuple):
    """An executor as stored: when it was last seen, what it offers, and whether an operator drained it."""

    name: str
    last_seen: float
    capacity: Capacity
    labels: dict[str, str]
    address: str
    version: str
    drained: bool
