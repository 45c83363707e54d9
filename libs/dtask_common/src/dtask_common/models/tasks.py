"""Tasks, their attempts and progress, and the queue they wait in."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from dtask_common.models.executors import AttemptUsage
from dtask_common.models.metrics import MetricPoint
from dtask_common.models.quick_init import quick_init
from dtask_common.models.specs import TaskSpec


class TaskState(StrEnum):
    """Lifecycle state of a task, and outcome of an attempt."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    LOST = "lost"

    @property
    def finished(self) -> bool:
        return self in FINISHED_STATES

    @property
    def ok(self) -> bool:
        return self is TaskState.SUCCEEDED


FINISHED_STATES = frozenset({TaskState.SUCCEEDED, TaskState.FAILED, TaskState.CANCELLED, TaskState.LOST})


@dataclass(slots=True)
class Progress:
    """Progress of a running attempt as parsed from its output."""

    label: str = ""
    step: int = 0
    total: int | None = None
    percent: float | None = None
    rate: float | None = None
    elapsed_s: float | None = None
    eta_s: float | None = None
    updated_at: float | None = None
    # The outer position when the bar restarts every epoch: epoch `epoch` (1-based) of `epochs`.
    epoch: int | None = None
    epochs: int | None = None

    @property
    def fraction(self) -> float | None:
        """Done fraction 0..1, when known."""
        if self.percent is not None:
            return max(0.0, min(1.0, self.percent / 100.0))
        if self.total:
            return max(0.0, min(1.0, self.step / self.total))
        return None

    @property
    def overall(self) -> float | None:
        """Done fraction 0..1 over all epochs (the inner bar's share of the current one), when known."""
        if not self.epoch or not self.epochs or self.epochs <= 0:
            return None
        inner = self.fraction or 0.0
        return max(0.0, min(1.0, (min(self.epoch, self.epochs) - 1 + inner) / self.epochs))


@dataclass(slots=True)
class Attempt:
    """One dispatch of a task to an executor."""

    task_id: str
    number: int
    executor: str = ""
    gpu_ids: tuple[int, ...] = ()
    dispatched_at: float | None = None
    finished_at: float | None = None
    state: TaskState = TaskState.RUNNING
    exit_code: int | None = None
    signal: int | None = None
    error: str = ""
    result: dict[str, Any] | None = None
    peak_rss_bytes: int = 0
    cpu_time_s: float = 0.0
    duration_s: float = 0.0
    metrics: tuple[MetricPoint, ...] = ()  # its live metrics over time (bounded, see metric_series)


@dataclass(slots=True)
class Task:
    """A task as the controller knows it."""

    id: str
    spec: TaskSpec
    state: TaskState = TaskState.PENDING
    submitted_at: float | None = None
    attempts: list[Attempt] = field(default_factory=list)
    progress: Progress | None = None
    result: dict[str, Any] | None = None
    error: str = ""
    stale_since: float | None = None  # running on an executor out of touch since then
    usage: AttemptUsage | None = None  # while running: its attempt's latest CPU, memory and GPU memory

    @property
    def name(self) -> str:
        return self.spec.name or self.id

    @property
    def current(self) -> Attempt | None:
        return self.attempts[-1] if self.attempts else None

    @property
    def executor(self) -> str:
        """The current attempt's executor; none while the task waits (also when queued again)."""
        return self.attempts[-1].executor if self.attempts and self.state is not TaskState.PENDING else ""

    @property
    def dispatched_at(self) -> float | None:
        return self.attempts[-1].dispatched_at if self.attempts and self.state is not TaskState.PENDING else None

    @property
    def finished_at(self) -> float | None:
        if not self.state.finished:
            return None
        return self.attempts[-1].finished_at if self.attempts else None

    @property
    def duration_s(self) -> float | None:
        start, end = self.dispatched_at, self.finished_at
        return end - start if start is not None and end is not None else None


@quick_init
@dataclass(frozen=True, slots=True)
class AttemptResult:
    """What a runner reports when an attempt ends."""

    task_id: str
    attempt: int
    state: TaskState
    exit_code: int | None = None
    signal: int | None = None
    result: dict[str, Any] | None = None
    error: str = ""
    started_at: float | None = None
    finished_at: float | None = None
    peak_rss_bytes: int = 0
    cpu_time_s: float = 0.0
    output_bytes: int = 0  # size of its output log when it ended


@dataclass(frozen=True, slots=True)
class RunningAttempt:
    """An attempt a runner is running now."""

    task_id: str
    attempt: int
    started_at: float | None = None


@dataclass(frozen=True, slots=True)
class QueueStatus:
    """Counts of tasks per state and whether dispatch is paused."""

    paused: bool = False
    pending: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0
    lost: int = 0

    @property
    def finished(self) -> bool:
        return self.pending == 0 and self.running == 0


@dataclass(frozen=True, slots=True)
class OutputChunk:
    """A piece of an attempt's combined output."""

    task_id: str
    attempt: int
    offset: int
    data: bytes
    notice: str = ""  # what of the output asked for can no longer be read (on GetTaskOutput)
    total_bytes: int = 0  # the attempt's whole output size as far as known (on GetTaskOutput)
