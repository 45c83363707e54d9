"""Domain models shared by every dtask component, with validation and no I/O."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from dtask_common import numbers

MAX_NAME = 256
MAX_COMMAND_BYTES = 128 * 1024
MAX_PATH = 4096
MAX_ENV_ENTRIES = 1024
MAX_ENV_VALUE = 32 * 1024
MAX_LABEL = 256
MAX_TAGS = 64
MAX_DEPENDS = 1024
MAX_RETRIES = 100
#: Tasks one SubmitTasks call (so one task file, matrices expanded) may hold.
MAX_SUBMIT = 10_000
MAX_LOST_AFTER_S = 30 * 24 * 3600.0
PROGRESS_PARSERS = ("auto", "tqdm", "fraction", "regex", "none")
PROGRESS_GROUPS = ("label", "step", "total", "percent")
INT32_MAX = 2**31 - 1


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


FINISHED_STATES = frozenset(
    {TaskState.SUCCEEDED, TaskState.FAILED, TaskState.CANCELLED, TaskState.LOST}
)


class ExecutorState(StrEnum):
    """Liveness and load of an executor (runner)."""

    IDLE = "idle"
    BUSY = "busy"
    DRAINING = "draining"
    DEAD = "dead"
    GONE = "gone"


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem with one field of one task of a submission."""

    field: str
    message: str
    index: int = 0
    task_name: str = ""

    def __str__(self) -> str:
        who = f"task {self.task_name!r}" if self.task_name else f"task #{self.index + 1}"
        return f"{who}: {self.field}: {self.message}"


class ValidationError(ValueError):
    """Raised when one or more task fields are invalid; lists every problem."""

    def __init__(self, errors: Iterable[FieldError]):
        self.errors: list[FieldError] = list(errors)
        super().__init__("; ".join(str(e) for e in self.errors) or "invalid")


@dataclass(frozen=True, slots=True)
class Resources:
    """What a task needs from a runner (a task always takes one slot)."""

    cpus: float = 0.0
    memory_mb: int = 0
    gpus: int = 0

    def errors(self) -> list[FieldError]:
        out = []
        for name, limit in (("cpus", None), ("memory_mb", numbers.INT64_MAX), ("gpus", INT32_MAX)):
            problem = numbers.problem(getattr(self, name), maximum=limit)
            if problem:
                out.append(FieldError(f"resources.{name}", problem))
        return out


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """What a task runs and how it is scheduled; exactly one of argv or shell."""

    name: str = ""
    argv: tuple[str, ...] = ()
    shell: str = ""
    cwd: str = ""
    env: Mapping[str, str] = field(default_factory=dict)
    resources: Resources = Resources()
    labels: Mapping[str, str] = field(default_factory=dict)
    priority: int = 0
    max_retries: int = 0
    timeout_s: float = 0.0
    depends_on: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    progress: str = "auto"
    progress_pattern: str = ""
    result_marker: str = ""
    lost_after_s: float = 0.0  # 0: the controller's lost_after_s

    @property
    def command_text(self) -> str:
        """The command as one line for display."""
        if self.shell:
            return self.shell
        import shlex

        return shlex.join(self.argv)

    def errors(self) -> list[FieldError]:
        """Every validation problem of this spec (empty when valid)."""
        errs: list[FieldError] = []

        def bad(fieldname: str, message: str) -> None:
            errs.append(FieldError(fieldname, message))

        def text(fieldname: str, value: object, limit: int, *, required: bool = False) -> None:
            if not isinstance(value, str):
                bad(fieldname, f"must be a string, got {type(value).__name__}")
            elif "\x00" in value:
                bad(fieldname, "contains a NUL byte; remove it")
            elif len(value.encode("utf-8", "surrogatepass")) > limit:
                bad(fieldname, f"is longer than {limit} bytes; shorten it")
            elif required and not value.strip():
                bad(fieldname, "is empty")

        text("name", self.name, MAX_NAME)
        if self.argv and self.shell:
            bad("command", "give either an argv list or a shell string, not both")
        elif not self.argv and not (isinstance(self.shell, str) and self.shell.strip()):
            bad("command", "is empty; give a program and its arguments or a shell string")
        if self.argv:
            total = 0
            for i, arg in enumerate(self.argv):
                text(f"command[{i}]", arg, MAX_COMMAND_BYTES)
                total += len(arg) if isinstance(arg, str) else 0
            if isinstance(self.argv[0], str) and not self.argv[0].strip():
                bad("command[0]", "the program name is empty")
            if total > MAX_COMMAND_BYTES:
                bad("command", f"is longer than {MAX_COMMAND_BYTES} bytes; shorten it")
        if self.shell:
            text("command", self.shell, MAX_COMMAND_BYTES)
        text("cwd", self.cwd, MAX_PATH)
        if len(self.env) > MAX_ENV_ENTRIES:
            bad("env", f"has more than {MAX_ENV_ENTRIES} entries")
        for key, value in self.env.items():
            text(f"env.{key}", key, MAX_LABEL, required=True)
            if isinstance(key, str) and "=" in key:
                bad(f"env.{key}", "a variable name cannot contain '='")
            text(f"env.{key}", value, MAX_ENV_VALUE)
        errs.extend(self.resources.errors())
        for key, value in self.labels.items():
            text(f"labels.{key}", key, MAX_LABEL, required=True)
            text(f"labels.{key}", value, MAX_LABEL)
        if not _is_int(self.priority) or abs(self.priority) > INT32_MAX:
            bad("priority", f"must be an integer within ±{INT32_MAX}, got {self.priority!r}")
        if not _is_int(self.max_retries) or not 0 <= self.max_retries <= MAX_RETRIES:
            bad("max_retries", f"must be an integer from 0 to {MAX_RETRIES}, got {self.max_retries!r}")
        if numbers.problem(self.timeout_s) is not None:
            bad("timeout_s", f"must be a finite number of seconds >= 0 (0: no limit), got {self.timeout_s!r}")
        if numbers.problem(self.lost_after_s) is not None or not 0 <= self.lost_after_s <= MAX_LOST_AFTER_S:
            bad("lost_after_s", f"must be a finite number of seconds from 0 (the controller's default) to "
                f"{MAX_LOST_AFTER_S:g}, got {self.lost_after_s!r}")
        if len(self.depends_on) > MAX_DEPENDS:
            bad("depends_on", f"has more than {MAX_DEPENDS} entries")
        for i, dep in enumerate(self.depends_on):
            text(f"depends_on[{i}]", dep, MAX_NAME, required=True)
        if len(self.tags) > MAX_TAGS:
            bad("tags", f"has more than {MAX_TAGS} entries")
        for i, tag in enumerate(self.tags):
            text(f"tags[{i}]", tag, MAX_LABEL, required=True)
        if self.progress not in PROGRESS_PARSERS:
            bad("progress", f"unknown parser {self.progress!r}; use one of {', '.join(PROGRESS_PARSERS)}")
        text("progress_pattern", self.progress_pattern, MAX_LABEL * 4)
        if self.progress == "regex":
            _check_pattern(self.progress_pattern, bad)
        elif self.progress_pattern and self.progress in PROGRESS_PARSERS:
            bad("progress_pattern", "is only used with progress = 'regex'")
        text("result_marker", self.result_marker, MAX_LABEL)
        return errs

    def validate(self, index: int = 0) -> TaskSpec:
        """Return self, or raise ValidationError naming every bad field."""
        errs = self.errors()
        if errs:
            raise ValidationError(
                FieldError(e.field, e.message, index, self.name if isinstance(self.name, str) else "")
                for e in errs
            )
        return self


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_pattern(pattern: str, bad: Any) -> None:
    if not pattern:
        bad("progress_pattern", "is required with progress = 'regex'")
        return
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        bad("progress_pattern", f"is not a valid regular expression: {exc}")
        return
    if not set(compiled.groupindex) & {"step", "percent"}:
        bad("progress_pattern", "needs a named group 'step' or 'percent', e.g. (?P<step>\\d+)")


def validate_batch(specs: Iterable[TaskSpec]) -> list[FieldError]:
    """Validate a submission: every spec, unique names, dependencies in order."""
    errs: list[FieldError] = []
    seen: dict[str, int] = {}
    specs = list(specs)
    for i, spec in enumerate(specs):
        name = spec.name if isinstance(spec.name, str) else ""
        for e in spec.errors():
            errs.append(FieldError(e.field, e.message, i, name))
        if name:
            if name in seen:
                errs.append(FieldError("name", f"duplicates task #{seen[name] + 1}; names must be unique in a submission", i, name))
            else:
                seen[name] = i
    for i, spec in enumerate(specs):
        for dep in spec.depends_on:
            if dep == spec.name:
                errs.append(FieldError("depends_on", "a task cannot depend on itself", i, spec.name))
    return errs


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

    @property
    def fraction(self) -> float | None:
        """Done fraction 0..1, when known."""
        if self.percent is not None:
            return max(0.0, min(1.0, self.percent / 100.0))
        if self.total:
            return max(0.0, min(1.0, self.step / self.total))
        return None


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
class GpuUsage:
    """Usage of one GPU."""

    index: int
    name: str = ""
    util_percent: float = 0.0
    memory_percent: float = 0.0
    memory_total_bytes: int = 0


@dataclass(frozen=True, slots=True)
class UsageSample:
    """One resource-usage sample of a machine; doubles as a heartbeat."""

    at: float
    cpu_percent: float = 0.0
    per_cpu_percent: tuple[float, ...] = ()
    ram_percent: float = 0.0
    swap_percent: float | None = None
    load_avg: tuple[float, ...] = ()
    gpus: tuple[GpuUsage, ...] = ()
    ram_total_bytes: int = 0
    ram_used_bytes: int = 0

    @property
    def gpu_percent(self) -> float | None:
        """Mean utilisation over GPUs, when any."""
        return sum(g.util_percent for g in self.gpus) / len(self.gpus) if self.gpus else None

    @property
    def vmem_percent(self) -> float | None:
        """Mean GPU memory use over GPUs, when any."""
        return sum(g.memory_percent for g in self.gpus) / len(self.gpus) if self.gpus else None


@dataclass(frozen=True, slots=True)
class Capacity:
    """What a runner offers."""

    slots: int = 1
    cpus: float = 0.0
    memory_mb: int = 0
    gpus: tuple[int, ...] = ()


@dataclass(slots=True)
class ExecutorInfo:
    """A runner as the controller knows it."""

    name: str
    state: ExecutorState = ExecutorState.IDLE
    capacity: Capacity = Capacity()
    labels: dict[str, str] = field(default_factory=dict)
    address: str = ""
    version: str = ""
    protocol_version: int = 0
    connected_since: float | None = None
    last_seen: float | None = None
    running_task_ids: tuple[str, ...] = ()
    last_usage: UsageSample | None = None
    containment: str = ""  # "cgroup", or "sweep: <why no cgroup>"

    @property
    def dead(self) -> bool:
        return self.state in (ExecutorState.DEAD, ExecutorState.GONE)


@dataclass(frozen=True, slots=True)
class ExecutorUsage:
    """Latest sample, dead flag and history of one executor."""

    executor: str
    dead: bool = False
    latest: UsageSample | None = None
    history: tuple[UsageSample, ...] = ()


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


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a caller is, from its certificate."""

    role: str
    name: str
    controller_name: str = ""
    version: str = ""
