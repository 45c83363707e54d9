"""The loaded part of a long task list: rows in id order, the pages to ask for, merged and evicted (no I/O)."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from enum import StrEnum

from dtask_common.models import Task, TaskState

from dtask_tui.listing import natural

PAGE_SIZE = 500
ROW_CAP = 5000
MARGIN = 100  # a page is asked for once the focus is this close to an end of the loaded rows


def id_key(task_id: str) -> tuple[object, ...]:
    """The order ListTasks pages in (task ids are numbers; natural order keeps that for any text)."""
    return natural(task_id)


@dataclass(frozen=True, slots=True)
class TaskQuery:
    """What ListTasks filters on: states, executor, a name substring."""

    states: frozenset[TaskState] = frozenset()
    executor: str = ""
    name_contains: str = ""

    def matches(self, task: Task) -> bool:
        """The controller's filter, applied to a task an event brings."""
        if self.states and task.state not in self.states:
            return False
        if self.executor and task.executor != self.executor:
            return False
        return not self.name_contains or self.name_contains in task.name


class Direction(StrEnum):
    FORWARD = "forward"  # the page after the last loaded row
    BACK = "back"  # a page before the first loaded row


@dataclass(frozen=True, slots=True)
class PageRequest:
    """One ListTasks call the app is to make; its answer goes to TaskWindow.loaded."""

    query: TaskQuery
    token: str
    page_size: int
    direction: Direction
    generation: int


@dataclass
class TaskWindow:
    """Ids of the loaded rows of one query in id order, where they sit in the whole list, and what to load next.

    Every page start seen is kept as an anchor (its first id and the token that asked for it), so rows
    evicted at either end can be loaded again with a token the controller gave.
    """

    page_size: int = PAGE_SIZE
    cap: int = ROW_CAP
    margin: int = MARGIN
    query: TaskQuery = field(default_factory=TaskQuery)
    generation: int = 0
    ids: list[str] = field(default_factory=list)
    keys: list[tuple[object, ...]] = field(default_factory=list)
    offset: int = 0  # rows of the whole list before ids[0]
    total: int = 0  # rows in the whole list (ListTasks.total, kept up with events)
    started: bool = False  # the first page has been asked for
    end_token: str = ""  # asks for the rows after the last loaded one
    at_end: bool = False  # the last loaded row is the last of the list
    anchors: list[tuple[tuple[object, ...], str]] = field(default_factory=list)
    in_flight: PageRequest | None = None
    pages: int = 0  # pages merged since the last reset

    # ---- the query -------------------------------------------------------------------------
    def reset(self, query: TaskQuery) -> None:
        """Forget the rows (a new filter or a new connection); the next request is the first page."""
        self.query = query
        self.generation += 1
        self.ids = []
        self.keys = []
        self.offset = 0
        self.total = 0
        self.started = False
        self.end_token = ""
        self.at_end = False
        self.anchors = []
        self.in_flight = None
        self.pages = 0

    @property
    def loading(self) -> bool:
        """No page has arrived yet for this query."""
        return self.pages == 0

    def position(self, task_id: str) -> int | None:
        """Index of a loaded row, or None."""
        key = id_key(task_id)
        i = bisect.bisect_left(self.keys, key)
        return i if i < len(self.ids) and self.keys[i] == key else None

    # ---- what to load ----------------------------------------------------------------------
    def want(self, focus: int) -> PageRequest | None:
        """The page to load for a focus on row `focus` of the loaded rows, marked in flight; None if none."""
        if self.in_flight is not None:
            return None
        req: PageRequest | None = None
        if not self.started:
            self.started = True
            req = self._request("", Direction.FORWARD)
        elif not self.at_end and focus >= len(self.ids) - self.margin:
            req = self._request(self.end_token, Direction.FORWARD)
        elif self.offset > 0 and self.ids and focus < self.margin:
            req = self._request(self._anchor_before(self.keys[0]), Direction.BACK)
        self.in_flight = req
        return req

    def _request(self, token: str, direction: Direction) -> PageRequest:
        return PageRequest(self.query, token, self.page_size, direction, self.generation)

    def _anchor_before(self, key: tuple[object, ...]) -> str:
        """The token of the last page start before key ("" asks from the first row)."""
        i = bisect.bisect_left(self.anchors, (key, "")) - 1
        return self.anchors[i][1] if i >= 0 else ""

    def failed(self, req: PageRequest) -> None:
        """A request did not get its page; it may be asked for again."""
        if self.in_flight == req:
            self.in_flight = None

    # ---- pages -----------------------------------------------------------------------------
    def loaded(self, req: PageRequest, ids: list[str], next_token: str, total: int) -> list[str]:
        """Merge one page (ids in id order); returns the ids it added. A page for an older query is dropped."""
        if req.generation != self.generation:
            return []
        if self.in_flight == req:
            self.in_flight = None
        self.pages += 1
        self.total = total
        if ids:
            anchor = (id_key(ids[0]), req.token)
            i = bisect.bisect_left(self.anchors, anchor)
            if i == len(self.anchors) or self.anchors[i][0] != anchor[0]:
                self.anchors.insert(i, anchor)
        first = self.keys[0] if self.keys else None
        added = [i for i in ids if self.position(i) is None]
        for task_id in added:
            self._insert(task_id)
        if req.direction is Direction.FORWARD and req.token == self.end_token:
            self.end_token = next_token
            self.at_end = next_token == ""
        if req.token == "":
            self.offset = 0
        elif first is not None:
            self.offset = max(0, self.offset - sum(1 for i in added if id_key(i) < first))
        return added

    def _insert(self, task_id: str) -> int:
        key = id_key(task_id)
        i = bisect.bisect_left(self.keys, key)
        self.keys.insert(i, key)
        self.ids.insert(i, task_id)
        return i

    def _remove(self, i: int) -> None:
        del self.keys[i]
        del self.ids[i]

    def evict(self, focus: int) -> list[str]:
        """Drop rows beyond the cap from the end farther from the focus; returns the dropped ids."""
        extra = len(self.ids) - self.cap
        if extra <= 0:
            return []
        if focus >= len(self.ids) // 2:  # drop from the top
            dropped = self.ids[:extra]
            del self.ids[:extra]
            del self.keys[:extra]
            self.offset += extra
            return dropped
        keep = len(self.ids) - extra
        dropped = self.ids[keep:]
        self.end_token = self._anchor_before(self.keys[keep])
        del self.ids[keep:]
        del self.keys[keep:]
        self.at_end = False
        return dropped

    # ---- live changes ----------------------------------------------------------------------
    def changed(self, old: Task | None, new: Task, added: bool) -> bool | None:
        """Follow one task's change: True when the loaded rows changed, None when the total is no longer known.

        old is the task as it was, when known; added says the task is new to the cluster.
        """
        now_in = self.query.matches(new)
        pos = self.position(new.id)
        if pos is not None:
            if not now_in:
                self._remove(pos)
                self.total = max(0, self.total - 1)
                return True
            return False
        was_in: bool | None = False if added else (None if old is None else self.query.matches(old))
        key = id_key(new.id)
        inside = self._covers(key)
        if inside:
            was_in = False  # a matching row inside the loaded range would be loaded
        if now_in:
            if was_in is None:
                return None
            if not was_in:
                self.total += 1
                if inside:
                    self._insert(new.id)
                    return True
                if self.keys and key < self.keys[0]:
                    self.offset += 1
            return False
        if was_in is None:
            return None
        if was_in:
            self.total = max(0, self.total - 1)
            if self.keys and key < self.keys[0]:
                self.offset = max(0, self.offset - 1)
        return False

    def _covers(self, key: tuple[object, ...]) -> bool:
        """Whether a row with this key would be among the loaded rows."""
        if not self.started or self.loading:
            return False
        if not self.keys:
            return self.at_end and self.offset == 0
        below = key >= self.keys[0] or self.offset == 0
        above = key <= self.keys[-1] or self.at_end
        return below and above
