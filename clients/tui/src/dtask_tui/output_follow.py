"""Streams the focused attempt's output into the state while a view shows it; reopens after a lost connection."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from dtask_client import DtaskError
from dtask_common.models import TaskState

from dtask_tui.client import ControllerClient
from dtask_tui.connection import is_connection_loss
from dtask_tui.output_tail import OUTPUT_LIMIT, OutputTail
from dtask_tui.state import Layout, Tab, TuiState

OUTPUT_DEBOUNCE_S = 0.15
OUTPUT_RETRY_S = 1.0


class OutputFollower:
    """At most one Logs stream: the one for the attempt the screen shows."""

    def __init__(self, client: ControllerClient, state: TuiState, changed: Callable[[], None]):
        self.client = client
        self.state = state
        self.changed = changed
        self.task: asyncio.Task[None] | None = None
        self._key: tuple[str, int] | None = None

    def wanted(self) -> tuple[str, int] | None:
        """(task id, attempt) whose output is on screen, or None."""
        st = self.state
        if st.tab is not Tab.TASKS or (st.layout is Layout.TABLE and not st.output_open):
            return None
        task = st.focused_task()
        if task is None or task.state is TaskState.PENDING or not task.attempts:
            return None
        return task.id, task.attempts[-1].number

    def sync(self) -> None:
        """Open, replace or close the stream to match what the screen shows (needs a running loop)."""
        want = self.wanted()
        if want == self._key:
            return
        if self.task is not None:
            self.task.cancel()
            self.task = None
        self._key = want
        if want is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._key = None
            return
        self.task = loop.create_task(self._follow(*want))

    async def _follow(self, task_id: str, attempt: int) -> None:
        await asyncio.sleep(OUTPUT_DEBOUNCE_S)  # focus moving row by row does not open a stream per row
        task = self.state.tasks.get(task_id)
        follow = task is not None and not task.state.finished
        fresh = OutputTail(task_id, attempt)  # the stream starts from the beginning of the kept tail
        try:
            async for chunk in self.client.logs(task_id, attempt=attempt, follow=follow, tail_bytes=OUTPUT_LIMIT):
                if self.state.output is not fresh:
                    self.state.output = fresh
                fresh.add(chunk)
                self.changed()
            self.state.output = fresh
            fresh.done = True
        except DtaskError as exc:
            self.state.output = fresh
            fresh.error = exc.message
            fresh.done = True
            if is_connection_loss(exc):
                await asyncio.sleep(OUTPUT_RETRY_S)
                self._key = None  # the next redraw opens the stream again
        self.changed()
