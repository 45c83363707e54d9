"""Feeds the state from the controller: Watch first, polling when Watch breaks, reconnecting on loss."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable

from dtask_client import ControllerUnavailable, DtaskError

from dtask_tui.client import ControllerClient
from dtask_tui.state import TuiState
from dtask_tui.status import ConnState

log = logging.getLogger(__name__)

LOST_CODES = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED", "CANCELLED"})
MAX_BATCH = 256  # events per Watch message


def is_connection_loss(exc: BaseException) -> bool:
    """True when the controller is unreachable (as opposed to a call it refused or cannot serve)."""
    return isinstance(exc, ControllerUnavailable) or getattr(exc, "code", "") in LOST_CODES


async def _nothing() -> None:
    return None


class Feed:
    """Keeps TuiState in step with the controller until stopped."""

    def __init__(
        self,
        client: ControllerClient,
        state: TuiState,
        changed: Callable[[], None],
        *,
        poll_interval: float = 1.0,
        poll_rounds: int = 30,
        backoff_max: float = 5.0,
    ):
        self.client = client
        self.state = state
        self.changed = changed
        self.poll_interval = poll_interval
        self.poll_rounds = poll_rounds
        self.backoff_max = backoff_max
        self.ready: Callable[[], Awaitable[None]] = _nothing  # what to wait for before watching

    async def run(self) -> None:
        """Connect, watch, fall back to polling, reconnect; forever (cancel to stop)."""
        backoff = 0.25
        while True:
            try:
                ident, queue = await asyncio.gather(self.client.whoami(), self.client.queue())
                self.state.set_connection(self.state.connection.state, identity=ident)
                self.state.begin(queue)  # hold every task, or page them
                self.changed()
                await self.ready()  # the first page before the snapshot: the screen does not wait for it
                await self._watch()
                backoff = 0.25
                self._lost("the controller closed the Watch stream")
            except asyncio.CancelledError:
                raise
            except DtaskError as exc:
                if is_connection_loss(exc):
                    self._lost(exc.message)
                else:
                    log.warning("watch failed (%s: %s); polling instead", exc.code, exc.message)
                    try:
                        await self._poll(exc.message)
                        backoff = 0.25
                        continue
                    except DtaskError as poll_exc:
                        self._lost(poll_exc.message)
            except Exception as exc:  # a broken stream must never take the TUI down
                log.exception("feed error")
                self._lost(f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(backoff * (0.8 + 0.4 * random.random()))
            backoff = min(self.backoff_max, backoff * 2)

    def _lost(self, message: str) -> None:
        self.state.set_connection(ConnState.RECONNECTING, message)
        self.changed()

    async def _watch(self) -> None:
        """Apply Watch events until the stream ends."""
        first = True
        st = self.state
        events = self.client.watch_window(finished_limit=st.finished_limit(), max_batch=MAX_BATCH)
        async for event in events:
            if first:
                first = False
                self.state.set_connection(ConnState.CONNECTED)
            self.state.apply(event)
            self.changed()

    async def _poll(self, reason: str) -> None:
        """Poll the query calls every interval for a while, then let run() try Watch again."""
        for _ in range(self.poll_rounds):
            await self.poll_once()
            if self.state.connection.state is not ConnState.POLLING:
                self.state.set_connection(ConnState.POLLING, reason)
            self.changed()
            await asyncio.sleep(self.poll_interval)

    async def poll_once(self) -> None:
        """One complete picture from the unary queries (while paging, of all but the tasks)."""
        c = self.client
        results = await asyncio.gather(
            c.queue() if self.state.paged else c.tasks(),
            c.executors(),
            c.resource_usage(history=self.state.history),
            c.queue(),
            return_exceptions=True,
        )
        for r in results:
            if isinstance(r, BaseException):
                raise r
        tasks, executors, usage, queue = results
        if self.state.paged:
            tasks = [t for t in self.state.tasks.values() if not t.state.finished]  # the rows stay; pages refresh
        self.state.replace_all(tasks, executors, usage, queue)  # type: ignore[arg-type]
