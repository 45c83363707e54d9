"""What the controller and a runner session exchange: the Hello, the commands sent down, the session (no I/O)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from dtask_common.models import AttemptResult, Capacity, RunningAttempt, TaskSpec


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


@dataclass(frozen=True, slots=True)
class WelcomeCmd:
    controller_name: str
    executor_name: str
    usage_interval_s: float
    # (task_id, attempt, offset): output held of each attempt running there; the runner sends on from offset.
    output_offsets: tuple[tuple[str, int, int], ...] = ()


@dataclass(frozen=True, slots=True)
class AssignCmd:
    task_id: str
    attempt: int
    spec: TaskSpec
    gpu_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class CancelCmd:
    task_id: str
    attempt: int
    reason: str


@dataclass(frozen=True, slots=True)
class AckCmd:
    task_id: str
    attempt: int


Command = WelcomeCmd | AssignCmd | CancelCmd | AckCmd


@dataclass(eq=False)
class Session:
    """One runner stream: commands go down through the outbox; None ends the stream."""

    name: str
    token: int
    instance_id: str = ""
    # Why the controller ended this session, when a runner should not simply reconnect.
    ended_because: str = ""
    outbox: asyncio.Queue[Command | None] = field(default_factory=asyncio.Queue)

    def send(self, cmd: Command | None) -> None:
        self.outbox.put_nowait(cmd)
