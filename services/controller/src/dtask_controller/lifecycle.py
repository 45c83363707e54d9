"""The core's periodic work (liveness checks, the flush of output and progress), its start and its stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dtask_controller import liveness
from dtask_controller.store import StoreFull

if TYPE_CHECKING:
    from dtask_controller.core import ControllerCore

log = logging.getLogger(__name__)
# How often usage samples that arrived are published (Fanout.defer): a watcher sees one at most this much later;
# 1,000 runners sending usage at 1 Hz then wake each watcher 4 times a second, not 1,000 (and fill its batches).
USAGE_PUBLISH_S = 0.25


def flush(core: ControllerCore) -> None:
    """Write output tails and progress that changed (not state: state is committed as it changes)."""
    out = core.tails.take_dirty()
    prog = [(t, core.progress[t]) for t in core.dirty_progress if t in core.progress]
    core.dirty_progress.clear()
    if out or prog:
        try:
            with core.store.transaction():
                if out:
                    core.store.write_output(out)
                if prog:
                    core.store.set_progress(prog)
        except Exception:  # not written (a full disk?): still to write, next time
            for tid, attempt, _start, _data in out:
                if (tail := core.tails.get(tid, attempt)) is not None:
                    tail.dirty = True
            core.dirty_progress.update(t for t, _p in prog)
            raise


class Ticker:
    """Runs the liveness check and the flush periodically, from start() to stop()."""

    def __init__(self, core: ControllerCore):
        self.core = core
        self._tasks: list[asyncio.Task[None]] = []
        self._last_tick = 0.0

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(_every(self._interval(), self._liveness_tick)),
            asyncio.create_task(_every(self.core.settings.flush_interval_s, self.flush)),
            asyncio.create_task(_every(USAGE_PUBLISH_S, self.core.fanout.flush_deferred)),
        ]
        self.core.kick()

    async def stop(self) -> None:
        """Stop ticking, end every runner session and Watch and output stream, write what is left."""
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        core = self.core
        for s in list(core.sessions.values()):
            s.send(None)
        core.fanout.close_all()
        flush(core)
        core.tails.end_all()  # output followers end their streams
        for event in core.task_waiters.values():
            event.set()

    def flush(self) -> None:
        flush(self.core)

    def _liveness_tick(self) -> None:
        """liveness.check, first giving executors back the time this controller itself stood still."""
        now = time.monotonic()
        stalled = now - self._last_tick - self._interval() if self._last_tick else 0.0
        self._last_tick = now
        if stalled > self.core.settings.dead_after_s / 2:
            log.warning(
                "the controller stood still for %.1fs (paused or overloaded); that silence is not held "
                "against executors",
                stalled,
            )
            self.core.registry.forgive(stalled)
        liveness.check(self.core)

    def _interval(self) -> float:
        return max(0.05, min(0.5, self.core.settings.dead_after_s / 5))


async def _every(interval: float, fn: Callable[[], Any]) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            fn()
        except StoreFull as exc:  # keep the controller serving; the log says what broke
            log.error("periodic %s failed: %s", getattr(fn, "__name__", fn), exc)
        except Exception:
            log.exception("periodic %s failed", getattr(fn, "__name__", fn))
