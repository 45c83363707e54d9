"""A runner session as the controller holds it: its outbox of commands (the messages themselves are library models)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from dtask_common.models import AckCmd as AckCmd
from dtask_common.models import AssignCmd as AssignCmd
from dtask_common.models import CancelCmd as CancelCmd
from dtask_common.models import Command
from dtask_common.models import Hello as Hello
from dtask_common.models import WelcomeCmd as WelcomeCmd

from dtask_controller.output_reads import PendingReads


@dataclass(eq=False)
class Session:
    """One runner stream: commands go down through the outbox; None ends the stream."""

    name: str
    token: int
    instance_id: str = ""
    # Why the controller ended this session, when a runner should not simply reconnect.
    ended_because: str = ""
    # Set when the runner broke the protocol (a batch holding a batch or a Hello): the stream ends with it.
    protocol_error: str = ""
    # What it sent could not be committed: the stream ends; nothing more it sent is applied.
    broken: bool = False
    outbox: asyncio.Queue[Command | None] = field(default_factory=asyncio.Queue)
    reads: PendingReads = field(default_factory=PendingReads)  # output reads in flight (output_reads.py)

    def send(self, cmd: Command | None) -> None:
        self.outbox.put_nowait(cmd)
