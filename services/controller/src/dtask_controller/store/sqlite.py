"""The SQLite store (the embedded default): tasks, attempts, output tails, executors and settings in one file."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from dtask_common.models import Capacity, MetricPoint, Progress, TaskSpec, TaskState

from dtask_controller.store.records import StoredExecutor
from dtask_controller.store.rows import (
    EXECUTOR_COLS,
    capacity_to_json,
    dumps,
    executor_from_row,
    metrics_to_json,
    param_key,
    progress_to_json,
    spec_to_json,
)
from dtask_controller.store.sqlite_prune import SqlitePrune
from dtask_controller.store.sqlite_reads import SqliteReads


class SqliteStore(SqliteReads, SqlitePrune):
    """One SQLite file per controller (WAL, a process lock); every public write commits before returning."""

    # ---- settings ----

    def get_meta(self, key: str, default: str = "") -> str:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction():
            self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    # ---- task writes ----

    def add_tasks(self, specs: Sequence[TaskSpec], deps: Sequence[Sequence[str]], now: float) -> list[str]:
        """Insert tasks in order (ids ascending); deps[i] are the dependency ids of specs[i]."""
        if len(deps) != len(specs):
            raise ValueError(f"{len(specs)} specs but {len(deps)} dependency lists")
        with self.transaction():
            # The ids SQLite would give one by one (an INTEGER PRIMARY KEY without AUTOINCREMENT takes the largest
            # id + 1), taken at once so that every table is written with one executemany.
            (first,) = self._db.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM tasks").fetchone()
            first = max(first, self.id_floor() + 1)  # a pruned id is never given again
            pending = TaskState.PENDING.value
            self._db.executemany(
                "INSERT INTO tasks (id, name, spec, state, priority, submitted_at) VALUES (?, ?, ?, ?, ?, ?)",
                [(first + k, s.name, spec_to_json(s), pending, s.priority, now) for k, s in enumerate(specs)],
            )
            tags = [(t, first + k) for k, s in enumerate(specs) for t in s.tags]
            if tags:
                self._db.executemany("INSERT OR IGNORE INTO task_tags (tag, task_id) VALUES (?, ?)", tags)
            params = [
                (k, param_key(v), first + i) for i, s in enumerate(specs) if s.params for k, v in s.params.items()
            ]
            if params:
                self._db.executemany("INSERT OR IGNORE INTO task_params (key, value, task_id) VALUES (?, ?, ?)", params)
            links = [(first + k, int(d)) for k, ds in enumerate(deps) for d in ds]
            if links:
                self._db.executemany("INSERT OR IGNORE INTO task_deps (task_id, dep_id) VALUES (?, ?)", links)
        return [str(first + k) for k in range(len(specs))]

    def add_deps(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Record (task id, dependency id) pairs."""
        with self.transaction():
            self._db.executemany(
                "INSERT OR IGNORE INTO task_deps (task_id, dep_id) VALUES (?, ?)", [(int(t), int(d)) for t, d in pairs]
            )

    def set_task(
        self,
        task_id: str,
        state: TaskState,
        *,
        error: str | None = None,
        result: Any = ...,
        retries_used: int | None = None,
        lost_used_retry: bool | None = None,
    ) -> None:
        """lost_used_retry: set when the task waits again because its latest attempt was lost (else cleared)."""
        sets: list[str] = ["state = ?", "lost_used_retry = ?"]
        args: list[Any] = [state.value, None if lost_used_retry is None else int(lost_used_retry)]
        if error is not None:
            sets.append("error = ?")
            args.append(error)
        if result is not ...:
            sets.append("result = ?")
            args.append(dumps(result))
        if retries_used is not None:
            sets.append("retries_used = ?")
            args.append(retries_used)
        with self.transaction():
            self._db.execute(f"UPDATE tasks SET {', '.join(sets)} WHERE id = ?", (*args, int(task_id)))

    def add_attempt(self, task_id: str, number: int, executor: str, gpu_ids: Sequence[int], now: float) -> None:
        with self.transaction():
            self._db.execute(
                "INSERT OR REPLACE INTO attempts (task_id, number, executor, gpu_ids, dispatched_at, state) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (int(task_id), number, executor, json.dumps(list(gpu_ids)), now, TaskState.RUNNING.value),
            )
            self._db.execute(
                "UPDATE tasks SET state = ?, attempts = ?, executor = ?, progress = NULL, error = '' WHERE id = ?",
                (TaskState.RUNNING.value, number, executor, int(task_id)),
            )

    def finish_attempt(
        self,
        task_id: str,
        number: int,
        state: TaskState,
        *,
        finished_at: float,
        exit_code: int | None = None,
        signal: int | None = None,
        error: str = "",
        result: Any = None,
        peak_rss_bytes: int = 0,
        cpu_time_s: float = 0.0,
        started_at: float | None = None,
    ) -> None:
        with self.transaction():
            self._db.execute(
                "UPDATE attempts SET state = ?, finished_at = ?, exit_code = ?, signal = ?, error = ?, result = ?, "
                "peak_rss_bytes = ?, cpu_time_s = ?, duration_s = MAX(0.0, ? - COALESCE(?, dispatched_at, ?)) "
                "WHERE task_id = ? AND number = ?",
                (
                    state.value,
                    finished_at,
                    exit_code,
                    signal,
                    error,
                    dumps(result),
                    peak_rss_bytes,
                    cpu_time_s,
                    finished_at,
                    started_at,
                    finished_at,
                    int(task_id),
                    number,
                ),
            )

    def reopen_attempt(self, task_id: str, number: int, executor: str, retries_used: int) -> None:
        """A LOST attempt runs again (its runner came back with it): the task is running it again."""
        with self.transaction():
            self._db.execute(
                "UPDATE attempts SET state = ?, finished_at = NULL, error = '' WHERE task_id = ? AND number = ?",
                (TaskState.RUNNING.value, int(task_id), number),
            )
            self._db.execute(
                "UPDATE tasks SET state = ?, attempts = ?, executor = ?, error = '', retries_used = ?, "
                "lost_used_retry = NULL WHERE id = ?",
                (TaskState.RUNNING.value, number, executor, retries_used, int(task_id)),
            )

    def set_progress(self, items: Iterable[tuple[str, Progress]]) -> None:
        with self.transaction():
            self._db.executemany(
                "UPDATE tasks SET progress = ? WHERE id = ?", [(progress_to_json(p), int(t)) for t, p in items]
            )

    def set_attempt_metrics(self, task_id: str, number: int, points: Sequence[MetricPoint]) -> None:
        with self.transaction():
            self._db.execute(
                "UPDATE attempts SET metrics = ? WHERE task_id = ? AND number = ?",
                (metrics_to_json(points), int(task_id), number),
            )

    def write_output(self, items: Iterable[tuple[str, int, int, bytes]]) -> None:
        """Store output tails: (task_id, attempt, offset of the first byte, bytes)."""
        with self.transaction():
            self._db.executemany(
                "INSERT OR REPLACE INTO output (task_id, attempt, start, data) VALUES (?, ?, ?, ?)",
                [(int(t), a, s, d) for t, a, s, d in items],
            )

    # ---- executors ----

    def upsert_executor(
        self, name: str, now: float, address: str, version: str, capacity: Capacity, labels: dict[str, str]
    ) -> None:
        with self.transaction():
            self._db.execute(
                "INSERT INTO executors (name, first_seen, last_seen, address, version, capacity, labels) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET last_seen = excluded.last_seen, "
                "address = excluded.address, version = excluded.version, capacity = excluded.capacity, "
                "labels = excluded.labels",
                (name, now, now, address, version, capacity_to_json(capacity), json.dumps(labels)),
            )

    def set_executor_drained(self, name: str, drained: bool) -> None:
        with self.transaction():
            self._db.execute("UPDATE executors SET drained = ? WHERE name = ?", (int(drained), name))

    def executors(self) -> list[StoredExecutor]:
        return [executor_from_row(row) for row in self._db.execute(f"SELECT {EXECUTOR_COLS} FROM executors")]
