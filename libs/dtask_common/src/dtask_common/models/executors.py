"""Executors (runners): their state, capacity and resource usage."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class ExecutorState(StrEnum):
    """Liveness and load of an executor (runner)."""

    IDLE = "idle"
    BUSY = "busy"
    DRAINING = "draining"
    DEAD = "dead"
    GONE = "gone"


@dataclass(frozen=True, slots=True)
class GpuUsage:
    """Usage of one GPU."""

    index: int
    name: str = ""
    util_percent: float = 0.0
    memory_percent: float = 0.0
    memory_total_bytes: int = 0


@dataclass(frozen=True, slots=True)
class AttemptUsage:
    """What the processes of one running attempt use, as its runner sampled them."""

    task_id: str
    attempt: int
    cpu_percent: float = 0.0  # since the runner's previous look; 100 = one core busy
    rss_bytes: int = 0
    gpu_memory_bytes: int | None = None  # None: the runner cannot read GPU memory per process
    cpu_time_s: float = 0.0


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
    attempts: tuple[AttemptUsage, ...] = ()  # the usage of each attempt running there

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
    prefetch: int = 0  # assignments held beyond the slots, started the moment a slot frees


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
