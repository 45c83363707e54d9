"""Runs the calls the paged listing asks for: ListTasks pages around the focus, fresh counts per state."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from dtask_client import DtaskError

from dtask_tui.client import ControllerClient
from dtask_tui.state import TuiState
from dtask_tui.window import PageRequest

log = logging.getLogger(__name__)

RETRY_S = 1.0
COUNTS_EVERY_S = 1.0


class Pager:
    """At most one page call and one counts call at a time; each answer goes to the state, then a redraw."""

    def __init__(self, client: ControllerClient, state: TuiState, changed: Callable[[], None]):
        self.client = client
        self.state = state
        self.changed = changed
        self.task: asyncio.Task[None] | None = None
        self.counts_task: asyncio.Task[None] | None = None
        self.pages = 0  # pages fetched (tests and the benchmark)

    @property
    def running(self) -> list[asyncio.Task[None]]:
        return [t for t in (self.task, self.counts_task) if t is not None and not t.done()]

    async def idle(self) -> None:
        """Wait for the page call running now, if any (its failure is the page call's to report)."""
        task = self.task
        if task is not None and not task.done():
            await asyncio.wait([task])

    def sync(self) -> None:
        """Start the call the state wants next, if none is running (needs a running loop)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if self.task is None or self.task.done():
            req = self.state.page_request()
            if req is not None:
                self.task = loop.create_task(self._page(req), name="dtask-tui page")
        if self.state.counts_stale and (self.counts_task is None or self.counts_task.done()):
            self.counts_task = loop.create_task(self._counts(), name="dtask-tui counts")

    async def _page(self, req: PageRequest) -> None:
        q = req.query
        try:
            tasks, token, total = await self.client.task_page(
                sorted(q.states),
                executor=q.executor or None,
                name_contains=q.name_contains or None,
                page_token=req.token,
                page_size=req.page_size,
            )
        except DtaskError as exc:
            log.warning("listing tasks failed: %s", exc.message)
            self.state.say(f"listing tasks failed: {exc.message}", "error")
            self.changed()
            await asyncio.sleep(RETRY_S)
            self.state.page_failed(req)
            self.task = None
            self.sync()
            return
        self.pages += 1
        self.state.page_loaded(req, tasks, token, total)
        self.task = None
        self.changed()
        self.sync()

    async def _counts(self) -> None:
        await asyncio.sleep(COUNTS_EVERY_S)  # a burst of events makes one call
        try:
            queue = await self.client.queue()
        except DtaskError as exc:
            log.warning("reading the queue counts failed: %s", exc.message)
            return
        self.state.set_counts(queue)
        self.changed()
