"""A controller store filled with many tasks straight through SQLite, before the controller opens it."""

from __future__ import annotations

import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from dtask_common.models import TaskSpec, TaskState
from dtask_controller.store import open_store
from dtask_controller.store.rows import spec_to_json

CHUNK = 50_000
EXECUTORS = 16


def state_of(i: int) -> TaskState:
    """A mostly finished mix: 1% pending, 2% failed, 1% cancelled, the rest succeeded."""
    r = (i * 7919) % 100
    if r == 0:
        return TaskState.PENDING
    if r in (1, 2):
        return TaskState.FAILED
    if r == 3:
        return TaskState.CANCELLED
    return TaskState.SUCCEEDED


def fill_store(path: Path, n: int, now: float | None = None) -> Counter[TaskState]:
    """n tasks (ids 1..n) with their attempts in the store at path; returns how many are in each state.

    The store's own migrations make the schema (open_store); the rows go in with executemany, which is what
    makes a million tasks take seconds rather than the minutes of one transaction per task.
    """
    open_store(path).close()
    now = time.time() if now is None else now
    counts: Counter[TaskState] = Counter()
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA synchronous = OFF")
        for lo in range(1, n + 1, CHUNK):
            tasks, attempts, tags = [], [], []
            for i in range(lo, min(n, lo + CHUNK - 1) + 1):
                state = state_of(i)
                counts[state] += 1
                name = f"train[lr={i % 7},seed={i}]"
                spec = TaskSpec(name=name, shell=f"python train.py --seed {i}", tags=(f"sweep-{i % 10}",))
                submitted = now - 2 * (n - i) - 600
                ran = state in (TaskState.SUCCEEDED, TaskState.FAILED) or (state is TaskState.CANCELLED and i % 2)
                executor = f"node-{i % EXECUTORS:02d}" if ran else ""
                error = "exit code 1: RuntimeError: CUDA out of memory" if state is TaskState.FAILED else ""
                tasks.append((i, name, spec_to_json(spec), state.value, 0, submitted, error, int(ran), executor))
                tags.append((f"sweep-{i % 10}", i))
                if ran:
                    exit_code = 0 if state is TaskState.SUCCEEDED else (1 if state is TaskState.FAILED else None)
                    attempts.append(
                        (i, 1, executor, "[0]", submitted + 1, submitted + 91, state.value, exit_code, error, 90.0)
                    )
            with db:
                db.executemany(
                    "INSERT INTO tasks (id, name, spec, state, priority, submitted_at, error, attempts, executor) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    tasks,
                )
                db.executemany(
                    "INSERT INTO attempts (task_id, number, executor, gpu_ids, dispatched_at, finished_at, state, "
                    "exit_code, error, duration_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    attempts,
                )
                db.executemany("INSERT INTO task_tags (tag, task_id) VALUES (?, ?)", tags)
    finally:
        db.close()
    return counts


def ids(n: int) -> Iterator[str]:
    """The ids fill_store gives, in order."""
    return (str(i) for i in range(1, n + 1))
