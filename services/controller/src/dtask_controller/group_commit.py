"""Runner reports that arrive together (one batch, or several sessions in one event-loop turn) applied in one change:
one store commit, before any runner, watcher or waiter is told."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Hashable
from contextlib import AbstractContextManager
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Work:
    key: Hashable  # who sent it (one session): its works run in order, and fail together
    apply: Callable[[], None]
    failed: Callable[[BaseException], None]


class GroupCommit:
    """Work queued until the event loop's next turn, then applied in order in one change.

    When that change fails, each sender's work is applied again in a change of its own, so only the
    sender whose work cannot be committed hears of it (a full disk fails them all)."""

    def __init__(self, change: Callable[[], AbstractContextManager[None]]) -> None:
        self._change = change
        self._queued: list[_Work] = []
        self._scheduled = False
        self.groups = 0  # changes that committed queued work
        self.works = 0  # works those changes held

    def add(self, key: Hashable, apply: Callable[[], None], failed: Callable[[BaseException], None]) -> None:
        """Apply soon, with whatever else is queued in this turn of the event loop."""
        self._queued.append(_Work(key, apply, failed))
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def __len__(self) -> int:
        return len(self._queued)

    def flush(self) -> None:
        """Apply everything queued now, in one change."""
        self._scheduled = False
        works, self._queued = self._queued, []
        if not works:
            return
        try:
            with self._change():
                for w in works:
                    w.apply()
        except Exception as exc:
            by_key: dict[Hashable, list[_Work]] = {}
            for w in works:
                by_key.setdefault(w.key, []).append(w)
            if len(by_key) == 1:
                works[0].failed(exc)
                return
            log.info(
                "%d reports from %d runners could not be committed together; trying each runner's alone",
                len(works),
                len(by_key),
            )
            for group in by_key.values():
                self._alone(group)
            return
        self.groups += 1
        self.works += len(works)

    def _alone(self, group: list[_Work]) -> None:
        try:
            with self._change():
                for w in group:
                    w.apply()
        except Exception as exc:
            group[0].failed(exc)
            return
        self.groups += 1
        self.works += len(group)
