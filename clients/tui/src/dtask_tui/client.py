"""What the TUI needs from a controller client (dtask_client.AsyncController provides it)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from dtask_common.events import WatchEvent
from dtask_common.models import ExecutorInfo, ExecutorUsage, Identity, QueueStatus, Task, TaskState


class ControllerClient(Protocol):
    """The subset of AsyncController the TUI calls."""

    @property
    def address(self) -> str: ...

    async def whoami(self) -> Identity: ...

    async def executors(self, include_gone: bool = False) -> list[ExecutorInfo]: ...

    async def resource_usage(self, executor: str | None = None, history: int = 60) -> list[ExecutorUsage]: ...

    async def tasks(self) -> list[Task]: ...

    async def task_page(
        self,
        states: list[TaskState] | None = None,
        tag: str | None = None,
        executor: str | None = None,
        name_contains: str | None = None,
        page_token: str = "",
        page_size: int = 500,
    ) -> tuple[list[Task], str, int]: ...

    async def queue(self) -> QueueStatus: ...

    async def cancel(self, task_id: str) -> Task: ...

    async def retry(self, task_id: str) -> Task: ...

    async def drain(self, name: str, undrain: bool = False) -> ExecutorInfo: ...

    async def pause(self) -> QueueStatus: ...

    async def resume(self) -> QueueStatus: ...

    def logs(
        self, task_id: str, attempt: int = 0, follow: bool = False, *, tail_bytes: int = 0
    ) -> AsyncIterator[bytes]: ...

    def watch_window(
        self,
        include_usage: bool = True,
        include_progress: bool = True,
        finished_limit: int = 0,
        max_batch: int = 0,
    ) -> AsyncIterator[WatchEvent]: ...

    async def close(self) -> None: ...
