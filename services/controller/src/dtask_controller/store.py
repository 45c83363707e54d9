"""The durable store: tasks, attempts, output tails and executors in SQLite (WAL), with a process lock."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from dtask_common.ids import is_task_id
from dtask_common.models import (
    Attempt,
    Capacity,
    Progress,
    Resources,
    Task,
    TaskSpec,
    TaskState,
)
from dtask_common.private import FILE_MODE, open_private, private_dir

from dtask_controller.integrity import damaged_message
from dtask_controller.schema import migrate


class StoreLocked(RuntimeError):
    """Another controller process holds the store."""


class StoreFull(RuntimeError):
    """A write failed because the store's disk is full; it was rolled back whole."""


class StoreUnusable(RuntimeError):
    """The store file cannot be created or opened, or is not a dtask store; the message names the fix."""


def _unusable(path: Path, exc: OSError | sqlite3.Error) -> StoreUnusable:
    if getattr(exc, "sqlite_errorname", "") == "SQLITE_CORRUPT":
        return StoreUnusable(damaged_message(path, str(exc)))
    if getattr(exc, "sqlite_errorname", "") == "SQLITE_NOTADB":
        return StoreUnusable(f"the store {path} is not a dtask store or is damaged (SQLite: {exc}); move it aside "
                             "to start with an empty store, or point --store at the right file")
    if path.parent.exists() and not path.parent.is_dir():
        reason = f"{path.parent} is a file, not a directory"
    else:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return StoreUnusable(f"cannot use the store {path}: {reason}; make its directory writable or point --store "
                         "at a file in a writable directory")


def _make_private(path: Path) -> None:
    """The store file 0600 before SQLite opens it (its WAL and SHM files take the store's mode)."""
    os.close(open_private(path, os.O_RDWR))
    for suffix in ("-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError, PermissionError):
            os.chmod(path.with_name(path.name + suffix), FILE_MODE)  # left by an earlier version


_SPEC_FIELDS = tuple(f for f in TaskSpec.__dataclass_fields__ if f != "resources")


def spec_to_json(spec: TaskSpec) -> str:
    d: dict[str, Any] = {f: getattr(spec, f) for f in _SPEC_FIELDS}
    d["env"], d["labels"] = dict(spec.env), dict(spec.labels)
    r = spec.resources
    d["resources"] = {"cpus": r.cpus, "memory_mb": r.memory_mb, "gpus": r.gpus}
    return json.dumps(d, separators=(",", ":"))


def spec_from_json(text: str) -> TaskSpec:
    d = json.loads(text)
    d["resources"] = Resources(**d.get("resources", {}))
    for key in ("argv", "depends_on", "tags"):
        d[key] = tuple(d.get(key, ()))
    return TaskSpec(**d)


def _dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"), default=str)


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


@dataclass(frozen=True, slots=True)
class ActiveTask:
    """A pending or running task as stored, to rebuild the scheduler after a restart."""

    id: str
    spec: TaskSpec
    state: TaskState
    attempts: int
    retries_used: int
    executor: str
    gpu_ids: tuple[int, ...]
    deps: tuple[str, ...]
    lost: tuple[str, bool] | None = None  # pending after its latest attempt was lost: (its executor, used a retry)


SPECS_KEPT = 4096  # parsed specs kept by their stored text (read for every Watch event of a task)
_TASK_COLS = "id, spec, state, submitted_at, error, result, progress"
_ATTEMPT_COLS = ("task_id, number, executor, gpu_ids, dispatched_at, finished_at, state, exit_code, signal, "
                 "error, result, peak_rss_bytes, cpu_time_s, duration_s")


class Store:
    """One SQLite file per controller; every public write runs in a transaction committed before returning."""

    def __init__(self, path: Path, *, sync: str = "normal", lock: bool = True):
        self.path = Path(path)
        self._lock_fd: int | None = None
        db: sqlite3.Connection | None = None
        try:
            private_dir(self.path.parent)
            if lock:
                self._lock()
            _make_private(self.path)
            db = self._connect(sync)
            migrate(db)
        except (OSError, sqlite3.Error) as exc:
            if db is not None:
                db.close()
            if self._lock_fd is not None:
                os.close(self._lock_fd)
            raise _unusable(self.path, exc) from None
        self._db = db
        self._depth = 0
        self._specs: dict[str, TaskSpec] = {}

    def _spec(self, text: str) -> TaskSpec:
        """The spec stored as text, parsed once while kept (a stored spec never changes; TaskSpec is frozen)."""
        spec = self._specs.get(text)
        if spec is None:
            spec = self._specs[text] = spec_from_json(text)
            if len(self._specs) > SPECS_KEPT:
                del self._specs[next(iter(self._specs))]
        return spec

    def _lock(self) -> None:
        lock_path = self.path.with_name(self.path.name + ".lock")
        fd = open_private(lock_path, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise StoreLocked(
                f"another controller (pid {holder}) is using the store {self.path}; stop it first, "
                "or give this one its own store with --store FILE"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock_fd = fd

    def _connect(self, sync: str) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={'FULL' if sync == 'full' else 'NORMAL'}")
        db.execute("PRAGMA foreign_keys=OFF")
        db.execute("PRAGMA busy_timeout=5000")
        return db

    def reader(self) -> sqlite3.Connection:
        """A separate read connection (for snapshots that span many event-loop turns)."""
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA busy_timeout=5000")
        return db

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes; the outermost block commits (or rolls back on error)."""
        if self._depth == 0:
            self._db.execute("BEGIN IMMEDIATE")
        self._depth += 1
        try:
            yield
        except BaseException as exc:
            self._depth -= 1
            if self._depth == 0:
                self._end_failed(exc)
            raise
        self._depth -= 1
        if self._depth == 0:
            try:
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._end_failed(exc)
                raise

    def _end_failed(self, exc: BaseException) -> None:
        """Roll back (SQLite may have done so already, e.g. on a full disk); a full disk is StoreFull."""
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")
        if getattr(exc, "sqlite_errorname", "") == "SQLITE_FULL":
            raise StoreFull(f"the store {self.path} is full (no space left on its disk); nothing of this request "
                            "was stored: free space there and try again") from exc

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
        ids: list[str] = []
        with self.transaction():
            cur = self._db.cursor()
            for spec, task_deps in zip(specs, deps, strict=True):
                cur.execute(
                    "INSERT INTO tasks (name, spec, state, priority, submitted_at) VALUES (?, ?, ?, ?, ?)",
                    (spec.name, spec_to_json(spec), TaskState.PENDING.value, spec.priority, now),
                )
                tid = cur.lastrowid
                assert tid is not None
                ids.append(str(tid))
                if spec.tags:
                    cur.executemany("INSERT OR IGNORE INTO task_tags (tag, task_id) VALUES (?, ?)",
                                    [(t, tid) for t in spec.tags])
                if task_deps:
                    cur.executemany("INSERT OR IGNORE INTO task_deps (task_id, dep_id) VALUES (?, ?)",
                                    [(tid, int(d)) for d in task_deps])
        return ids

    def add_deps(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Record (task id, dependency id) pairs."""
        with self.transaction():
            self._db.executemany("INSERT OR IGNORE INTO task_deps (task_id, dep_id) VALUES (?, ?)",
                                 [(int(t), int(d)) for t, d in pairs])

    def spec(self, task_id: str) -> TaskSpec:
        row = self._db.execute("SELECT spec FROM tasks WHERE id = ?", (int(task_id),)).fetchone()
        if row is None:
            raise KeyError(task_id)
        return self._spec(row[0])

    def set_task(self, task_id: str, state: TaskState, *, error: str | None = None,
                 result: Any = ..., retries_used: int | None = None, lost_used_retry: bool | None = None) -> None:
        """lost_used_retry: set when the task waits again because its latest attempt was lost (else cleared)."""
        sets: list[str] = ["state = ?", "lost_used_retry = ?"]
        args: list[Any] = [state.value, None if lost_used_retry is None else int(lost_used_retry)]
        if error is not None:
            sets.append("error = ?")
            args.append(error)
        if result is not ...:
            sets.append("result = ?")
            args.append(_dumps(result))
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

    def finish_attempt(self, task_id: str, number: int, state: TaskState, *, finished_at: float,
                       exit_code: int | None = None, signal: int | None = None, error: str = "",
                       result: Any = None, peak_rss_bytes: int = 0, cpu_time_s: float = 0.0,
                       started_at: float | None = None) -> None:
        with self.transaction():
            self._db.execute(
                "UPDATE attempts SET state = ?, finished_at = ?, exit_code = ?, signal = ?, error = ?, result = ?, "
                "peak_rss_bytes = ?, cpu_time_s = ?, duration_s = MAX(0.0, ? - COALESCE(?, dispatched_at, ?)) "
                "WHERE task_id = ? AND number = ?",
                (state.value, finished_at, exit_code, signal, error, _dumps(result), peak_rss_bytes,
                 cpu_time_s, finished_at, started_at, finished_at, int(task_id), number),
            )

    def reopen_attempt(self, task_id: str, number: int, executor: str, retries_used: int) -> None:
        """A LOST attempt runs again (its runner came back with it): the task is running it again."""
        with self.transaction():
            self._db.execute("UPDATE attempts SET state = ?, finished_at = NULL, error = '' WHERE task_id = ? "
                             "AND number = ?", (TaskState.RUNNING.value, int(task_id), number))
            self._db.execute("UPDATE tasks SET state = ?, attempts = ?, executor = ?, error = '', retries_used = ?, "
                             "lost_used_retry = NULL WHERE id = ?", (TaskState.RUNNING.value, number, executor, retries_used, int(task_id)))

    def set_progress(self, items: Iterable[tuple[str, Progress]]) -> None:
        with self.transaction():
            self._db.executemany("UPDATE tasks SET progress = ? WHERE id = ?",
                                 [(_dumps(asdict(p)), int(t)) for t, p in items])

    def write_output(self, items: Iterable[tuple[str, int, int, bytes]]) -> None:
        """Store output tails: (task_id, attempt, offset of the first byte, bytes)."""
        with self.transaction():
            self._db.executemany(
                "INSERT OR REPLACE INTO output (task_id, attempt, start, data) VALUES (?, ?, ?, ?)",
                [(int(t), a, s, d) for t, a, s, d in items],
            )

    def upsert_executor(self, name: str, now: float, address: str, version: str, capacity: Capacity,
                        labels: dict[str, str]) -> None:
        with self.transaction():
            self._db.execute(
                "INSERT INTO executors (name, first_seen, last_seen, address, version, capacity, labels) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET last_seen = excluded.last_seen, "
                "address = excluded.address, version = excluded.version, capacity = excluded.capacity, "
                "labels = excluded.labels",
                (name, now, now, address, version, json.dumps(asdict(capacity)), json.dumps(labels)),
            )

    # ---- reads ----

    def set_executor_drained(self, name: str, drained: bool) -> None:
        with self.transaction():
            self._db.execute("UPDATE executors SET drained = ? WHERE name = ?", (int(drained), name))

    def executors(self) -> list[tuple[str, float, Capacity, dict[str, str], str, str, bool]]:
        rows = self._db.execute("SELECT name, last_seen, capacity, labels, address, version, drained FROM executors")
        out = []
        for name, seen, cap, labels, address, version, drained in rows:
            c = json.loads(cap)
            c["gpus"] = tuple(c.get("gpus", ()))
            out.append((name, seen, Capacity(**c), json.loads(labels), address, version, bool(drained)))
        return out

    def counts(self) -> dict[TaskState, int]:
        out = {s: 0 for s in TaskState}
        for state, n in self._db.execute("SELECT state, COUNT(*) FROM tasks GROUP BY state"):
            out[TaskState(state)] = n
        return out

    def max_id(self) -> int:
        return int(self._db.execute("SELECT COALESCE(MAX(id), 0) FROM tasks").fetchone()[0])

    def task_states(self, ids: Iterable[str]) -> dict[str, TaskState]:
        out: dict[str, TaskState] = {}
        keys = [int(i) for i in ids if is_task_id(i)]
        for chunk in range(0, len(keys), 500):
            part = keys[chunk:chunk + 500]
            q = f"SELECT id, state FROM tasks WHERE id IN ({','.join('?' * len(part))})"
            out.update({str(i): TaskState(s) for i, s in self._db.execute(q, part)})
        return out

    def active_tasks(self) -> Iterator[ActiveTask]:
        """Pending and running tasks in submission order, with their current attempt and dependencies."""
        deps: dict[int, list[str]] = {}
        for tid, dep in self._db.execute(
                "SELECT task_id, dep_id FROM task_deps WHERE task_id IN "
                "(SELECT id FROM tasks WHERE state IN ('pending', 'running')) ORDER BY task_id, dep_id"):
            deps.setdefault(tid, []).append(str(dep))
        q = ("SELECT t.id, t.spec, t.state, t.attempts, t.retries_used, t.executor, a.gpu_ids, a.executor, a.state, "
             "t.lost_used_retry FROM tasks t LEFT JOIN attempts a ON a.task_id = t.id AND a.number = t.attempts "
             "WHERE t.state IN ('pending', 'running') ORDER BY t.id")
        rows = self._db.execute(q).fetchall()
        for tid, spec, state, attempts, retries, executor, gpus, a_executor, a_state, lost_used in rows:
            lost = ((str(a_executor), bool(lost_used)) if state == TaskState.PENDING.value
                    and a_state == TaskState.LOST.value and lost_used is not None else None)
            yield ActiveTask(str(tid), self._spec(spec), TaskState(state), attempts, retries, executor,
                             tuple(json.loads(gpus)) if gpus else (), tuple(deps.get(tid, ())), lost)

    def attempt_executor(self, task_id: str, number: int) -> str | None:
        """The executor an attempt was dispatched to; None when the store has no such attempt."""
        if not task_id.isdecimal() or len(task_id) > 18:
            return None
        row = self._db.execute("SELECT executor FROM attempts WHERE task_id = ? AND number = ?",
                               (int(task_id), number)).fetchone()
        return None if row is None else str(row[0])

    def has_task(self, task_id: str) -> bool:
        return is_task_id(task_id) and self._db.execute(
            "SELECT 1 FROM tasks WHERE id = ?", (int(task_id),)).fetchone() is not None

    def get_task(self, task_id: str, db: sqlite3.Connection | None = None) -> Task | None:
        if not is_task_id(task_id):
            return None
        tasks = self._load(f"SELECT {_TASK_COLS} FROM tasks WHERE id = ?", (int(task_id),), db)
        return tasks[0] if tasks else None

    def list_tasks(self, *, states: Sequence[TaskState] = (), tag: str = "", executor: str = "",
                   name_contains: str = "", after: int = 0, limit: int = 100) -> tuple[list[Task], int]:
        """One page of tasks in id order after id `after`, and the number matching over all pages."""
        where, args = self._filter(states, executor, name_contains)
        cols = ", ".join(f"tasks.{c.strip()}" for c in _TASK_COLS.split(","))
        if tag:  # walk the tag index in id order instead of building the set of tagged ids
            source = "task_tags JOIN tasks ON tasks.id = task_tags.task_id"
            where, args = f"task_tags.tag = ? AND {where}", [tag, *args]
            count_q = ("SELECT COUNT(*) FROM task_tags WHERE tag = ?" if len(args) == 1
                       else f"SELECT COUNT(*) FROM {source} WHERE {where}")
            page_q = (f"SELECT {cols} FROM {source} WHERE {where} AND task_tags.task_id > ? "
                      "ORDER BY task_tags.task_id LIMIT ?")
        else:
            count_q = f"SELECT COUNT(*) FROM tasks WHERE {where}"
            page_q = f"SELECT {cols} FROM tasks WHERE {where} AND tasks.id > ? ORDER BY tasks.id LIMIT ?"
        total = self._db.execute(count_q, args).fetchone()[0]
        return self._load(page_q, (*args, after, limit)), int(total)

    @staticmethod
    def _filter(states: Sequence[TaskState], executor: str, name_contains: str) -> tuple[str, list[Any]]:
        clauses, args = ["1"], []  # type: ignore[var-annotated]
        if states:
            clauses.append(f"tasks.state IN ({','.join('?' * len(states))})")
            args.extend(s.value for s in states)
        if executor:
            clauses.append("tasks.executor = ?")
            args.append(executor)
        if name_contains:
            clauses.append("instr(tasks.name, ?) > 0")
            args.append(name_contains)
        return " AND ".join(clauses), args

    def iter_all(self, db: sqlite3.Connection, after: int, limit: int) -> list[Task]:
        """A page of every task, read on db (a reader() connection inside its own transaction)."""
        return self._load(f"SELECT {_TASK_COLS} FROM tasks WHERE id > ? ORDER BY id LIMIT ?", (after, limit), db)

    def _load(self, query: str, args: Sequence[Any], db: sqlite3.Connection | None = None) -> list[Task]:
        db = db or self._db
        rows = db.execute(query, args).fetchall()
        if not rows:
            return []
        tasks: dict[int, Task] = {}
        for tid, spec, state, submitted, error, result, progress in rows:
            tasks[tid] = Task(
                id=str(tid), spec=self._spec(spec), state=TaskState(state), submitted_at=submitted,
                error=error, result=_loads(result),
                progress=Progress(**json.loads(progress)) if progress else None,
            )
        keys = list(tasks)
        arows = db.execute(
            f"SELECT {_ATTEMPT_COLS} FROM attempts WHERE task_id IN ({','.join('?' * len(keys))}) "
            "ORDER BY task_id, number", keys)
        for row in arows:
            t = tasks.get(row[0])
            if t is not None:
                t.attempts.append(_attempt(row))
        return list(tasks.values())

    def output(self, task_id: str, attempt: int) -> tuple[int, bytes] | None:
        row = self._db.execute("SELECT start, data FROM output WHERE task_id = ? AND attempt = ?",
                               (int(task_id), attempt)).fetchone()
        return (int(row[0]), bytes(row[1])) if row else None

    def read_snapshot(self, page_size: int) -> Iterator[list[Task]]:
        """Pages of every stored task in id order, all read in one transaction of a reader() connection;
        it ends when the generator is closed or exhausted."""
        db = self.reader()
        try:
            db.execute("BEGIN")
            after = 0
            while True:
                page = self.iter_all(db, after, page_size)
                if page:
                    yield page
                if len(page) < page_size:
                    return
                after = int(page[-1].id)
        finally:
            db.close()


def _attempt(row: Sequence[Any]) -> Attempt:
    (tid, number, executor, gpus, dispatched, finished, state, exit_code, signal, error, result, rss, cpu,
     duration) = row
    return Attempt(
        task_id=str(tid), number=number, executor=executor, gpu_ids=tuple(json.loads(gpus)),
        dispatched_at=dispatched, finished_at=finished, state=TaskState(state), exit_code=exit_code,
        signal=signal, error=error, result=_loads(result), peak_rss_bytes=rss, cpu_time_s=cpu,
        duration_s=duration,
    )
