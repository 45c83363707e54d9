"""What the runner sends the controller (the Uplink the session implements), and the uplink while there is none."""

from __future__ import annotations

import asyncio
from typing import Protocol

from dtask_common.models import AttemptResult, MetricPoint, OutputChunk, Progress, UsageSample


class Uplink(Protocol):
    """What the runner sends to the controller (implemented by the session)."""

    @property
    def connected(self) -> bool: ...

    def progress(
        self, task_id: str, attempt: int, progress: Progress | None, metrics: tuple[MetricPoint, ...] = ()
    ) -> None: ...

    def usage(self, sample: UsageSample) -> None: ...

    def drain(self, draining: bool) -> None: ...

    async def output(self, chunk: OutputChunk) -> bool: ...

    def finished(self, result: AttemptResult) -> None: ...

    def refused(self, task_id: str, attempt: int, reason: str) -> None: ...


class Offline:
    """The uplink before a session exists: drops everything (results stay in the journal)."""

    connected = False

    def progress(
        self, task_id: str, attempt: int, progress: Progress | None, metrics: tuple[MetricPoint, ...] = ()
    ) -> None:
        pass

    def usage(self, sample: UsageSample) -> None:
        pass

    def drain(self, draining: bool) -> None:
        pass

    async def output(self, chunk: OutputChunk) -> bool:
        await asyncio.Event().wait()
        return False

    def finished(self, result: AttemptResult) -> None:
        pass

    def refused(self, task_id: str, attempt: int, reason: str) -> None:
        pass
