"""The SQLite store's snapshot reads: pages of tasks from one read transaction, every task or a selection."""

from __future__ import annotations

import bisect
import heapq
import sqlite3
from collections.abc import Callable, Collection, Generator, Mapping, Sequence
from typing import Any

from dtask_common.ids import is_task_id
from dtask_common.models import ParamValue, Task, TaskState, WatchFilter

from dtask_controller.store.errors import SnapshotClosed
from dtask_controller.store.rows import param_key

Pager = Callable[[sqlite3.Connection, int, int], list[Task]]
Loader = Callable[[sqlite3.Connection, Sequence[int]], list[Task]]
Release = Callable[[sqlite3.Connection, bool], None]  # (connection, whether it failed): give back or close
IN_CHUNK = 500  # ids per IN (...) list


class SqliteSnapshot(Generator[list[Task], None, None]):
    """Pages of tasks in id order from one read transaction on a connection of its own.

    Exhausted, failed or closed, the transaction ends; a page asked for after an early close raises SnapshotClosed.
    ids: for a selection, the ids of every task the pages will hold (read first, in the same transaction).
    """

    def __init__(self, db: sqlite3.Connection, pager: Pager, page_size: int, release: Release | None = None):
        self._db: sqlite3.Connection | None = db
        self._pager, self._size = pager, page_size
        self._release = release or _close
        self._after = 0
        self._closed_early = False
        self.ids: list[str] | None = None
        db.execute("BEGIN")  # deferred: the read transaction starts with the first read

    @classmethod
    def of_selection(
        cls, db: sqlite3.Connection, load: Loader, page_size: int, f: WatchFilter, release: Release | None = None
    ) -> SqliteSnapshot:
        """Pages of the tasks the filter selects; their ids are read at once (the transaction starts here)."""
        keys: list[int] = []

        def pager(db: sqlite3.Connection, after: int, limit: int) -> list[Task]:
            start = bisect.bisect_right(keys, after)
            return load(db, keys[start : start + limit])

        snap = cls(db, pager, page_size, release)
        try:
            keys.extend(selected_ids(db, f))
        except BaseException:
            snap._end(failed=True)
            raise
        snap.ids = [str(k) for k in keys]
        if not keys:
            snap._end()
        return snap

    def send(self, value: None, /) -> list[Task]:
        if self._db is None:
            if self._closed_early:
                raise SnapshotClosed("the snapshot was closed before its last page was read")
            raise StopIteration
        try:
            page = self._pager(self._db, self._after, self._size)
        except BaseException:
            self._end(failed=True)
            raise
        if len(page) < self._size:
            self._end()  # no page after this one
        else:
            self._after = int(page[-1].id)
        if not page:
            raise StopIteration
        return page

    def throw(self, typ: Any, val: Any = None, tb: Any = None, /) -> list[Task]:
        self._end()
        if isinstance(typ, BaseException):
            raise typ
        raise typ() if val is None else val

    def close(self) -> None:
        """End the read transaction; a page asked for after this raises SnapshotClosed (unless none was left)."""
        if self._db is not None:
            self._closed_early = True
            self._end()

    def _end(self, failed: bool = False) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            self._release(db, failed)


def _close(db: sqlite3.Connection, failed: bool) -> None:
    db.close()


class Readers:
    """Read connections kept open between snapshots (opening one and reading the schema costs more than a
    small snapshot); a connection comes back with its transaction ended, or is closed."""

    def __init__(self, make: Callable[[], sqlite3.Connection], kept: int = 4):
        self._make, self._kept = make, kept
        self._idle: list[sqlite3.Connection] = []

    def take(self) -> sqlite3.Connection:
        return self._idle.pop() if self._idle else self._make()

    def give_back(self, db: sqlite3.Connection, failed: bool) -> None:
        if not failed and len(self._idle) < self._kept:
            try:
                if db.in_transaction:
                    db.execute("ROLLBACK")  # a read: nothing to keep; the WAL may be checkpointed past it
                self._idle.append(db)
                return
            except sqlite3.Error:
                pass
        db.close()

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()


def selected_ids(db: sqlite3.Connection, f: WatchFilter) -> list[int]:
    """The ids (ascending) of the tasks the filter selects: all unfinished ones, the newest finished_limit
    finished ones (0: all). Reads the indexes only: task ids, (state, id), (executor, id), (tag, task_id)."""
    if f.task_ids:
        rows = _listed(db, f)
        if f.finished_limit:
            finished = heapq.nlargest(f.finished_limit, (i for i, s in rows if TaskState(s).finished))
            return sorted([i for i, s in rows if not TaskState(s).finished] + finished)
        return sorted(i for i, _ in rows)
    if not f.finished_limit:
        return _matching(db, f, f.states, 0)
    out = _matching(db, f, f.unfinished_states, 0) if f.unfinished_states else []
    newest = [_matching(db, f, {s}, f.finished_limit) for s in sorted(f.finished_states)]
    out.extend(heapq.nlargest(f.finished_limit, (i for ids in newest for i in ids)))
    return sorted(out)


def where_clause(
    states: Collection[TaskState],
    executor: str,
    name_contains: str = "",
    *,
    name_prefix: str = "",
    params: Mapping[str, ParamValue] | None = None,
) -> tuple[str, list[Any]]:
    """The WHERE clause (and its arguments) of a filter on the tasks table, as ListTasks and snapshots use it."""
    clauses: list[str] = ["1"]
    args: list[Any] = []
    if states:
        clauses.append(f"tasks.state IN ({','.join('?' * len(states))})")
        args.extend(s.value for s in sorted(states))
    if executor:
        clauses.append("tasks.executor = ?")
        args.append(executor)
    if name_contains:
        clauses.append("instr(tasks.name, ?) > 0")
        args.append(name_contains)
    if name_prefix:
        clauses.append("substr(tasks.name, 1, ?) = ?")
        args.extend((len(name_prefix), name_prefix))
    for key, value in (params or {}).items():
        clauses.append(
            "EXISTS (SELECT 1 FROM task_params WHERE task_params.key = ? AND task_params.value = ? "
            "AND task_params.task_id = tasks.id)"
        )
        args.extend((key, param_key(value)))
    return " AND ".join(clauses), args


def _matching(db: sqlite3.Connection, f: WatchFilter, states: Collection[TaskState], newest: int) -> list[int]:
    """Ids of the tasks in states (empty: any) that match the tag and executor; newest > 0: only that many,
    the highest ids first."""
    where, args = where_clause(states, f.executor)
    order = " ORDER BY tasks.id DESC LIMIT ?" if newest else ""
    tail = [newest] if newest else []
    if f.tag:
        q = f"SELECT tasks.id FROM task_tags JOIN tasks ON tasks.id = task_tags.task_id WHERE task_tags.tag = ? AND {where}"
        return [r[0] for r in db.execute(q + order.replace("tasks.id", "task_tags.task_id"), [f.tag, *args, *tail])]
    return [r[0] for r in db.execute(f"SELECT tasks.id FROM tasks WHERE {where}{order}", [*args, *tail])]


def _listed(db: sqlite3.Connection, f: WatchFilter) -> list[tuple[int, str]]:
    """(id, state) of the listed tasks that are stored and match the rest of the filter."""
    where, args = where_clause(f.states, f.executor)
    if f.tag:
        where += " AND EXISTS (SELECT 1 FROM task_tags WHERE task_tags.tag = ? AND task_tags.task_id = tasks.id)"
        args.append(f.tag)
    keys = sorted({int(i) for i in f.task_ids if is_task_id(i)})
    out: list[tuple[int, str]] = []
    for n in range(0, len(keys), IN_CHUNK):
        part = keys[n : n + IN_CHUNK]
        q = f"SELECT tasks.id, tasks.state FROM tasks WHERE tasks.id IN ({','.join('?' * len(part))}) AND {where}"
        out.extend(db.execute(q, [*part, *args]))
    return out
