"""Watch events: the changes a controller streams to its watchers, as plain models."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from dtask_common.models import ExecutorInfo, ExecutorUsage, MetricPoint, Progress, QueueStatus, Task, UsageSample


class TaskEventKind(StrEnum):
    ADDED = "added"
    DISPATCHED = "dispatched"
    FINISHED = "finished"
    CANCELLED = "cancelled"
    RETRIED = "retried"
    UPDATED = "updated"


class ExecutorEventKind(StrEnum):
    UP = "up"
    UPDATED = "updated"
    DEAD = "dead"
    GONE = "gone"


@dataclass(slots=True)
class Snapshot:
    """A piece of the consistent state sent first on Watch; last marks the end."""

    tasks: list[Task] = field(default_factory=list)
    executors: list[ExecutorInfo] = field(default_factory=list)
    usage: list[ExecutorUsage] = field(default_factory=list)
    queue: QueueStatus | None = None
    last: bool = True


@dataclass(slots=True)
class TaskEvent:
    kind: TaskEventKind
    task: Task


@dataclass(slots=True)
class ProgressEvent:
    task_id: str
    attempt: int
    progress: Progress | None  # None when only metrics changed
    metrics: tuple[MetricPoint, ...] = ()  # new points (the whole series is on the attempt)


@dataclass(slots=True)
class ExecutorEvent:
    kind: ExecutorEventKind
    executor: ExecutorInfo


@dataclass(slots=True)
class UsageEvent:
    executor: str
    sample: UsageSample


@dataclass(slots=True)
class QueueEvent:
    queue: QueueStatus


EventBody = Snapshot | TaskEvent | ProgressEvent | ExecutorEvent | UsageEvent | QueueEvent


@dataclass(slots=True)
class WatchEvent:
    """One event of a Watch stream, in order; resync precedes a fresh snapshot."""

    seq: int
    at: float
    body: EventBody
    resync: bool = False
