"""The SQLite store's reads: tasks with their attempts, filtered pages, active tasks, output tails, snapshots."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from dtask_common.ids import is_task_id
from dtask_common.models import ParamValue, Task, TaskSpec, TaskState, WatchFilter

from dtask_controller.store.records import ActiveTask
from dtask_controller.store.rows import ATTEMPT_COLS, TASK_COLS, SpecCache, attempt_from_row, task_from_row
from dtask_controller.store.snapshot_reads import Readers, SqliteSnapshot, where_clause
from dtask_controller.store.sqlite_file import SqliteFile

__all__ = ["SqliteReads", "SqliteSnapshot"]


class SqliteReads(SqliteFile):
    """Reads on the store's connection (snapshots on a connection of their own); specs parsed once while kept."""

    def __init__(self, path: Path, *, sync: str = "normal", lock: bool = True):
        super().__init__(path, sync=sync, lock=lock)
        self._specs = SpecCache()
        self._readers = Readers(self._reader)

    def close(self) -> None:
        """Close the kept read connections, then the store."""
        self._readers.close()
        super().close()

    def spec(self, task_id: str) -> TaskSpec:
        row = self._db.execute("SELECT spec FROM tasks WHERE id = ?", (int(task_id),)).fetchone()
        if row is None:
            raise KeyError(task_id)
        return self._specs.parse(row[0])

    def task_row(self, task_id: str) -> Task:
        row = self._db.execute(f"SELECT {TASK_COLS} FROM tasks WHERE id = ?", (int(task_id),)).fetchone()
        if row is None:
            raise KeyError(task_id)
        return task_from_row(row, self._specs)

    def counts(self) -> dict[TaskState, int]:
        out = {s: 0 for s in TaskState}
        for state, n in self._db.execute("SELECT state, COUNT(*) FROM tasks GROUP BY state"):
            out[TaskState(state)] = n
        return out

    def task_states(self, ids: Iterable[str]) -> dict[str, TaskState]:
        out: dict[str, TaskState] = {}
        keys = [int(i) for i in ids if is_task_id(i)]
        for chunk in range(0, len(keys), 500):
            part = keys[chunk : chunk + 500]
            q = f"SELECT id, state FROM tasks WHERE id IN ({','.join('?' * len(part))})"
            out.update({str(i): TaskState(s) for i, s in self._db.execute(q, part)})
        return out

    def active_tasks(self) -> Iterator[ActiveTask]:
        """Pending and running tasks in submission order, with their current attempt and dependencies."""
        deps: dict[int, list[str]] = {}
        for tid, dep in self._db.execute(
            "SELECT task_id, dep_id FROM task_deps WHERE task_id IN "
            "(SELECT id FROM tasks WHERE state IN ('pending', 'running')) ORDER BY task_id, dep_id"
        ):
            deps.setdefault(tid, []).append(str(dep))
        q = (
            "SELECT t.id, t.spec, t.state, t.attempts, t.retries_used, t.executor, a.gpu_ids, a.executor, a.state, "
            "t.lost_used_retry FROM tasks t LEFT JOIN attempts a ON a.task_id = t.id AND a.number = t.attempts "
            "WHERE t.state IN ('pending', 'running') ORDER BY t.id"
        )
        rows = self._db.execute(q).fetchall()
        for tid, spec, state, attempts, retries, executor, gpus, a_executor, a_state, lost_used in rows:
            lost = (
                (str(a_executor), bool(lost_used))
                if state == TaskState.PENDING.value and a_state == TaskState.LOST.value and lost_used is not None
                else None
            )
            yield ActiveTask(
                str(tid),
                self._specs.parse(spec),
                TaskState(state),
                attempts,
                retries,
                executor,
                tuple(json.loads(gpus)) if gpus else (),
                tuple(deps.get(tid, ())),
                lost,
            )

    def attempt_executor(self, task_id: str, number: int) -> str | None:
        """The executor an attempt was dispatched to; None when the store has no such attempt."""
        if not task_id.isdecimal() or len(task_id) > 18:
            return None
        row = self._db.execute(
            "SELECT executor FROM attempts WHERE task_id = ? AND number = ?", (int(task_id), number)
        ).fetchone()
        return None if row is None else str(row[0])

    def has_task(self, task_id: str) -> bool:
        return (
            is_task_id(task_id)
            and self._db.execute("SELECT 1 FROM tasks WHERE id = ?", (int(task_id),)).fetchone() is not None
        )

    def get_task(self, task_id: str) -> Task | None:
        if not is_task_id(task_id):
            return None
        tasks = self._load(self._db, f"SELECT {TASK_COLS} FROM tasks WHERE id = ?", (int(task_id),))
        return tasks[0] if tasks else None

    def list_tasks(
        self,
        *,
        states: Sequence[TaskState] = (),
        tag: str = "",
        executor: str = "",
        name_contains: str = "",
        after: int = 0,
        limit: int = 100,
        count: bool = True,
        name_prefix: str = "",
        params: Mapping[str, ParamValue] | None = None,
    ) -> tuple[list[Task], int]:
        """One page of tasks in id order after id `after`, and the number matching over all pages (0 without
        count: a caller that knows it spares the count)."""
        where, args = where_clause(states, executor, name_contains, name_prefix=name_prefix, params=params)
        cols = ", ".join(f"tasks.{c.strip()}" for c in TASK_COLS.split(","))
        if tag:  # walk the tag index in id order instead of building the set of tagged ids
            source = "task_tags JOIN tasks ON tasks.id = task_tags.task_id"
            where, args = f"task_tags.tag = ? AND {where}", [tag, *args]
            count_q = (
                "SELECT COUNT(*) FROM task_tags WHERE tag = ?"
                if len(args) == 1
                else f"SELECT COUNT(*) FROM {source} WHERE {where}"
            )
            page_q = (
                f"SELECT {cols} FROM {source} WHERE {where} AND task_tags.task_id > ? "
                "ORDER BY task_tags.task_id LIMIT ?"
            )
        else:
            count_q = f"SELECT COUNT(*) FROM tasks WHERE {where}"
            page_q = f"SELECT {cols} FROM tasks WHERE {where} AND tasks.id > ? ORDER BY tasks.id LIMIT ?"
        total = self._db.execute(count_q, args).fetchone()[0] if count else 0
        return self._load(self._db, page_q, (*args, after, limit)), int(total)

    def read_snapshot(self, page_size: int, select: WatchFilter | None = None) -> SqliteSnapshot:
        """Pages of every task (or of those select selects) in id order, all from one read transaction on a
        connection of its own; with select, the ids of the tasks to come are read at once (snapshot.ids)."""
        r = self._readers
        if select is None or not (select.selects or select.finished_limit):
            return SqliteSnapshot(r.take(), self._page, page_size, r.give_back)
        return SqliteSnapshot.of_selection(r.take(), self._load_ids, page_size, select, r.give_back)

    def _load_ids(self, db: sqlite3.Connection, keys: Sequence[int]) -> list[Task]:
        """The tasks of those ids (ascending, at most a few hundred), read on db."""
        if not keys:
            return []
        q = f"SELECT {TASK_COLS} FROM tasks WHERE id IN ({','.join('?' * len(keys))}) ORDER BY id"
        return self._load(db, q, keys)

    def _page(self, db: sqlite3.Connection, after: int, limit: int) -> list[Task]:
        """A page of every task after id `after`, read on db."""
        return self._load(db, f"SELECT {TASK_COLS} FROM tasks WHERE id > ? ORDER BY id LIMIT ?", (after, limit))

    def _load(self, db: sqlite3.Connection, query: str, args: Sequence[Any]) -> list[Task]:
        rows = db.execute(query, args).fetchall()
        if not rows:
            return []
        tasks = {row[0]: task_from_row(row, self._specs) for row in rows}
        keys = list(tasks)
        arows = db.execute(
            f"SELECT {ATTEMPT_COLS} FROM attempts WHERE task_id IN ({','.join('?' * len(keys))}) "
            "ORDER BY task_id, number",
            keys,
        )
        for row in arows:
            t = tasks.get(row[0])
            if t is not None:
                t.attempts.append(attempt_from_row(row))
        return list(tasks.values())

    def output(self, task_id: str, attempt: int) -> tuple[int, bytes] | None:
        row = self._db.execute(
            "SELECT start, data FROM output WHERE task_id = ? AND attempt = ?", (int(task_id), attempt)
        ).fetchone()
        return (int(row[0]), bytes(row[1])) if row else None
