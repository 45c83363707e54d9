"""What a runner session carries: the Hello, the controller's commands, the runner's reports; and who calls."""

from __future__ import annotations

from dataclasses import dataclass, field

from dtask_common import PROTOCOL_VERSION, __version__
from dtask_common.models.certificates import Revoked
from dtask_common.models.executors import Capacity, UsageSample
from dtask_common.models.metrics import MetricPoint
from dtask_common.models.specs import TaskSpec
from dtask_common.models.tasks import AttemptResult, OutputChunk, Progress, RunningAttempt


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a caller is, from its certificate."""

    role: str
    name: str
    controller_name: str = ""
    version: str = ""


@dataclass(frozen=True, slots=True)
class Hello:
    """The first message of a runner session."""

    name: str
    address: str = ""
    capacity: Capacity = Capacity()
    labels: dict[str, str] = field(default_factory=dict)
    running: tuple[RunningAttempt, ...] = ()
    unreported: tuple[AttemptResult, ...] = ()
    version: str = ""
    protocol_version: int = 0
    draining: bool = False
    instance_id: str = ""  # new each time the runner process starts
    containment: str = ""  # "cgroup", or "sweep: <why no cgroup>"
    path_names: tuple[str, ...] = ()  # the paths the runner declares ({path:NAME} in a task)


# ---- the controller's commands to a runner ----


@dataclass(frozen=True, slots=True)
class WelcomeCmd:
    """The controller's reply to a Hello (and later, new settings)."""

    controller_name: str
    executor_name: str
    usage_interval_s: float
    # (task_id, attempt, offset): output held of each attempt running there; the runner sends on from offset.
    output_offsets: tuple[tuple[str, int, int], ...] = ()
    version: str = __version__
    protocol_version: int = PROTOCOL_VERSION
    output_tail_bytes: int = 0  # the output tail the controller keeps of an attempt (0: unknown)
    revoked: tuple[Revoked, ...] = ()  # every certificate the controller has revoked


@dataclass(frozen=True, slots=True)
class AssignCmd:
    """Run this attempt of a task."""

    task_id: str
    attempt: int
    spec: TaskSpec
    gpu_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class CancelCmd:
    """Stop this attempt."""

    task_id: str
    attempt: int
    reason: str


@dataclass(frozen=True, slots=True)
class AckCmd:
    """The controller has stored this attempt's result; the runner may forget it."""

    task_id: str
    attempt: int


@dataclass(frozen=True, slots=True)
class ReadOutputCmd:
    """Send up to max_bytes of this attempt's output log from offset (answered by an OutputReadReport)."""

    request_id: int
    task_id: str
    attempt: int
    offset: int
    max_bytes: int


@dataclass(frozen=True, slots=True)
class RevokedCmd:
    """Certificates revoked since the Welcome: the runner's own service refuses them from now on."""

    certificates: tuple[Revoked, ...]


Command = WelcomeCmd | AssignCmd | CancelCmd | AckCmd | ReadOutputCmd | RevokedCmd


# ---- a runner's reports to the controller (with UsageSample, OutputChunk and AttemptResult) ----


@dataclass(frozen=True, slots=True)
class ProgressReport:
    """The latest progress of a running attempt (None when only metrics changed) and its new metric points."""

    task_id: str
    attempt: int
    progress: Progress | None
    metrics: tuple[MetricPoint, ...] = ()


@dataclass(frozen=True, slots=True)
class DrainReport:
    """The runner started (or stopped) draining: it takes no new attempts."""

    draining: bool


@dataclass(frozen=True, slots=True)
class RefusalReport:
    """The runner could not start an assigned attempt."""

    task_id: str
    attempt: int
    reason: str


@dataclass(frozen=True, slots=True)
class OutputReadReport:
    """The runner's answer to a ReadOutputCmd: bytes of the log from offset (eof: the attempt ended and its
    output ends after them), or why it cannot read it."""

    request_id: int
    offset: int = 0
    data: bytes = b""
    eof: bool = False
    error: str = ""


Report = (
    Hello | UsageSample | ProgressReport | OutputChunk | AttemptResult | DrainReport | RefusalReport | OutputReadReport
)
