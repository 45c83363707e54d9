"""Which tasks and executors are listed, in what order: state filter, search, sort (no urwid here)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from dtask_common.models import ExecutorInfo, Task, TaskState

from dtask_tui.cluster import HISTORY, Cluster


class Filter(StrEnum):
    ALL = "all"
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


FILTER_STATES: dict[Filter, frozenset[TaskState]] = {
    Filter.PENDING: frozenset({TaskState.PENDING}),
    Filter.RUNNING: frozenset({TaskState.RUNNING}),
    Filter.SUCCEEDED: frozenset({TaskState.SUCCEEDED}),
    Filter.FAILED: frozenset({TaskState.FAILED, TaskState.LOST}),
    Filter.CANCELLED: frozenset({TaskState.CANCELLED}),
}

SORTS = ("id", "name", "state", "executor", "dispatched", "finished", "duration", "attempts")
STATE_RANK = {
    TaskState.RUNNING: 0,
    TaskState.PENDING: 1,
    TaskState.FAILED: 2,
    TaskState.LOST: 3,
    TaskState.CANCELLED: 4,
    TaskState.SUCCEEDED: 5,
}
_DIGITS = re.compile(r"(\d+)")


def natural(text: str) -> tuple[object, ...]:
    """Sort key ordering 'task-9' before 'task-10'."""
    return tuple(int(p) if p.isdigit() else p.lower() for p in _DIGITS.split(text))


def _num(value: float | None) -> float:
    return float("inf") if value is None else value


class Listing(Cluster):
    """The cluster plus the task filter, search and sort; the listed order is kept until it may change."""

    def __init__(self, history: int = HISTORY, clock: Callable[[], float] = time.time):
        super().__init__(history)
        self.clock = clock
        self.task_filter = Filter.ALL
        self.search = ""
        self.sort = "id"
        self.reverse = False
        self._view: list[str] | None = None
        self._view_pos: dict[str, int] = {}
        self._exec_view: list[str] | None = None
        #: Executors out of touch longer than this (the controller's lost_after_s) are not listed ...
        self.lost_after_s = 60.0
        #: ... unless this is set (the Executors tab's `a`).
        self.show_all_executors = False
        self._natural_keys: dict[str, tuple[object, ...]] = {}

    # ---- what drops the listed order -------------------------------------------------------
    def _task_changed(self, old: Task | None, new: Task) -> None:
        if (
            old is None
            or old.state is not new.state
            or self.sort not in ("id", "name")
            or old.spec.name != new.spec.name
        ):
            self._view = None

    def _executors_changed(self) -> None:
        self._exec_view = None

    def _all_replaced(self) -> None:
        self._view = None
        self._exec_view = None

    # ---- filter, search, sort --------------------------------------------------------------
    def set_filter(self, f: Filter | str) -> None:
        self.task_filter = Filter(f)
        self._view = None

    def cycle_filter(self, step: int = 1) -> None:
        items = list(Filter)
        self.set_filter(items[(items.index(self.task_filter) + step) % len(items)])

    def set_search(self, text: str) -> None:
        self.search = text
        self._view = None

    def set_sort(self, key: str, reverse: bool | None = None) -> None:
        if key not in SORTS:
            raise ValueError(f"unknown sort {key!r}; use one of {', '.join(SORTS)}")
        self.sort = key
        if reverse is not None:
            self.reverse = reverse
        self._view = None

    def cycle_sort(self) -> None:
        self.set_sort(SORTS[(SORTS.index(self.sort) + 1) % len(SORTS)])

    def toggle_reverse(self) -> None:
        self.set_sort(self.sort, not self.reverse)

    def matches(self, task: Task) -> bool:
        states = FILTER_STATES.get(self.task_filter)
        if states is not None and task.state not in states:
            return False
        if self.search:
            needle = self.search.lower()
            if needle.startswith("@"):
                return task.executor.lower() == needle[1:]
            return (
                needle in task.name.lower()
                or task.id.lower().startswith(needle)
                or any(needle in t.lower() for t in task.spec.tags)
            )
        return True

    def _sort_key(self) -> Callable[[Task], Any]:
        key = self.sort
        nat = self._natural
        if key == "name":
            return lambda t: (nat(t.name), nat(t.id))
        if key == "state":
            return lambda t: (STATE_RANK.get(t.state, 9), nat(t.id))
        if key == "executor":
            return lambda t: (t.executor == "", t.executor, nat(t.id))
        if key == "dispatched":
            return lambda t: (_num(t.dispatched_at), nat(t.id))
        if key == "finished":
            return lambda t: (_num(t.finished_at), nat(t.id))
        if key == "duration":
            return lambda t: (_num(self.elapsed(t)), nat(t.id))
        if key == "attempts":
            return lambda t: (len(t.attempts), nat(t.id))
        return lambda t: (_num(t.submitted_at), nat(t.id))

    def _natural(self, text: str) -> tuple[object, ...]:
        """natural(text), remembered (ids and names repeat on every sort)."""
        key = self._natural_keys.get(text)
        if key is None:
            if len(self._natural_keys) > 200_000:
                self._natural_keys.clear()
            key = self._natural_keys[text] = natural(text)
        return key

    # ---- the listed order ------------------------------------------------------------------
    def view(self) -> list[str]:
        """Ids of the tasks shown, in display order (recomputed only after a relevant change)."""
        if self._view is None:
            chosen = [t for t in self.tasks.values() if self.matches(t)]
            chosen.sort(key=self._sort_key(), reverse=self.reverse)
            self._view = [t.id for t in chosen]
            self._view_pos = {tid: i for i, tid in enumerate(self._view)}
        return self._view

    def view_position(self, task_id: str | None) -> int | None:
        """Where a task is in view(), or None when it is not listed."""
        self.view()
        return self._view_pos.get(task_id or "")

    def executor_view(self) -> list[str]:
        """Executors by name; those gone longer than lost_after_s only when show_all_executors."""
        if self._exec_view is None:
            self._exec_view = sorted(self.executors, key=natural)
        if self.show_all_executors:
            return self._exec_view
        return [n for n in self._exec_view if not self.long_gone(self.executors[n])]

    def long_gone(self, ex: ExecutorInfo) -> bool:
        """Whether an executor is dead or gone and was last heard of more than lost_after_s ago."""
        return ex.dead and (ex.last_seen is None or self.clock() - ex.last_seen > self.lost_after_s)

    def hidden_executors(self) -> int:
        """How many executors the Executors tab leaves out."""
        return 0 if self.show_all_executors else len(self.executors) - len(self.executor_view())

    def filter_counts(self) -> dict[Filter, int]:
        c = self.counts
        return {
            Filter.ALL: sum(c.values()),
            Filter.PENDING: c[TaskState.PENDING],
            Filter.RUNNING: c[TaskState.RUNNING],
            Filter.SUCCEEDED: c[TaskState.SUCCEEDED],
            Filter.FAILED: c[TaskState.FAILED] + c[TaskState.LOST],
            Filter.CANCELLED: c[TaskState.CANCELLED],
        }

    def elapsed(self, task: Task) -> float | None:
        """Run time so far (running) or total (finished)."""
        start = task.dispatched_at
        if start is None:
            return None
        end = task.finished_at if task.state.finished else None
        return (end if end is not None else self.clock()) - start
