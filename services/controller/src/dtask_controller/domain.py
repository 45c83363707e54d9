"""Domain messages of the controller: runner commands and reports, sessions, settings and errors (no I/O)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from dtask_common.models import MAX_SUBMIT as MAX_SUBMIT
from dtask_common.models import AckCmd as AckCmd
from dtask_common.models import AssignCmd as AssignCmd
from dtask_common.models import CancelCmd as CancelCmd
from dtask_common.models import Command as Command
from dtask_common.models import FieldError
from dtask_common.models import Hello as Hello
from dtask_common.models import WelcomeCmd as WelcomeCmd


class NotFound(LookupError):
    """An unknown task or executor; the message says how to list the known ones."""


class Conflict(RuntimeError):
    """The command does not fit the current state; the message says what to do instead."""


class TooLarge(ValueError):
    """A request too large to serve in one call."""


class SlowWatcher(RuntimeError):
    """A watcher too slow to take its snapshot; it is dropped."""


class InvalidTasks(ValueError):
    """A rejected submission; `errors` lists every problem."""

    def __init__(self, errors: Sequence[FieldError], total: int):
        self.errors = list(errors)
        bad = len({e.index for e in self.errors})
        first = "; ".join(str(e) if len(str(e)) <= 300 else str(e)[:300] + "…" for e in self.errors[:5])
        more = f" (and {len(self.errors) - 5} more)" if len(self.errors) > 5 else ""
        super().__init__(f"{bad} of {total} tasks are invalid: {first}{more}; fix them and submit again "
                         "(nothing was queued)")


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


@dataclass
class Settings:
    """What the engine needs from the [controller] config section."""

    name: str = "ctrl@localhost"
    dead_after_s: float = 3.0
    lost_after_s: float = 60.0
    usage_history: int = 60
    output_tail_bytes: int = 1024 * 1024
    usage_interval_s: float = 1.0
    flush_interval_s: float = 0.5
    watch_queue: int = 10_000
    poison_after: int = 3  # runner.poison_after: a task whose runner died this many times in a row fails
