"""The controller's durable store: the interface the controller uses, its errors and records, and the SQLite default."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

from dtask_common.models import Capacity, MetricPoint, ParamValue, Progress, Task, TaskSpec, TaskState, WatchFilter

from dtask_controller.store.errors import SchemaTooNew, SnapshotClosed, StoreFull, StoreLocked, StoreUnusable
from dtask_controller.store.records import ActiveTask, StoredExecutor
from dtask_controller.store.sqlite import SqliteStore

__all__ = [
    "ActiveTask",
    "SchemaTooNew",
    "SnapshotClosed",
    "SnapshotPages",
    "SqliteStore",
    "Store",
    "StoreFull",
    "StoreLocked",
    "StoreUnusable",
    "StoredExecutor",
    "open_store",
]


class SnapshotPages(Protocol):
    """Pages of a snapshot (a generator of lists of tasks) and, for a selection, the ids they hold."""

    ids: list[str] | None

    def __iter__(self) -> Iterator[list[Task]]: ...

    def __next__(self) -> list[Task]: ...

    def close(self) -> None: ...


class Store(Protocol):
    """What the controller asks of its store; every write commits before returning (or inside `transaction`)."""

    @property
    def path(self) -> Path:
        """Where the store lives (for messages and the integrity check)."""

    def close(self) -> None:
        """Release the store (and its process lock)."""

    def observe_commits(self, observe: Callable[[float], None]) -> None:
        """Call observe with the seconds each commit takes, from now on (for the metrics)."""

    def transaction(self) -> AbstractContextManager[None]:
        """Group writes into one commit (nested blocks join the outermost); an error rolls all of them back."""

    def get_meta(self, key: str, default: str = "") -> str:
        """A setting by key, or default."""

    def set_meta(self, key: str, value: str) -> None:
        """Set a setting."""

    def add_tasks(self, specs: Sequence[TaskSpec], deps: Sequence[Sequence[str]], now: float) -> list[str]:
        """Insert pending tasks in order and return their ids (ascending); deps[i] are specs[i]'s dependency ids."""

    def add_deps(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Record (task id, dependency id) pairs."""

    def spec(self, task_id: str) -> TaskSpec:
        """A stored task's spec (KeyError when there is no such task)."""

    def task_row(self, task_id: str) -> Task:
        """A stored task without its attempts (KeyError when there is no such task)."""

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
        """Set a task's state (and error, result, retries used when given); lost_used_retry marks a wait after a loss."""

    def add_attempt(self, task_id: str, number: int, executor: str, gpu_ids: Sequence[int], now: float) -> None:
        """Record a dispatched attempt; its task is running it."""

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
        """Record how an attempt ended."""

    def reopen_attempt(self, task_id: str, number: int, executor: str, retries_used: int) -> None:
        """A LOST attempt runs again (its runner came back with it): the task is running it again."""

    def set_progress(self, items: Iterable[tuple[str, Progress]]) -> None:
        """Set the progress of tasks: (task id, progress)."""

    def set_attempt_metrics(self, task_id: str, number: int, points: Sequence[MetricPoint]) -> None:
        """Keep the live metrics an attempt reported (its bounded series) with the attempt."""

    def write_output(self, items: Iterable[tuple[str, int, int, bytes]]) -> None:
        """Store output tails: (task id, attempt, offset of the first byte, bytes)."""

    def upsert_executor(
        self, name: str, now: float, address: str, version: str, capacity: Capacity, labels: dict[str, str]
    ) -> None:
        """Record an executor that connected now (first seen, or seen again)."""

    def set_executor_drained(self, name: str, drained: bool) -> None:
        """Record an operator's drain (or undrain) of an executor."""

    def executors(self) -> list[StoredExecutor]:
        """Every executor ever recorded."""

    def counts(self) -> dict[TaskState, int]:
        """The number of tasks in each state (every state present)."""

    def task_states(self, ids: Iterable[str]) -> dict[str, TaskState]:
        """The states of those ids that are stored tasks."""

    def active_tasks(self) -> Iterator[ActiveTask]:
        """Pending and running tasks in submission order, with their current attempt and dependencies."""

    def attempt_executor(self, task_id: str, number: int) -> str | None:
        """The executor an attempt was dispatched to; None when the store has no such attempt."""

    def has_task(self, task_id: str) -> bool:
        """Whether a task of that id is stored."""

    def get_task(self, task_id: str) -> Task | None:
        """A task with its attempts; None when there is no such task."""

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

    def read_snapshot(self, page_size: int, select: WatchFilter | None = None) -> SnapshotPages:
        """Pages of every task in id order from one read transaction, ended when closed or exhausted.

        With select (a filter or a finished_limit), only the tasks it selects: their ids are read at once, in
        the same transaction, and given as the snapshot's ids. A page asked for after an early close raises
        SnapshotClosed."""

    def output(self, task_id: str, attempt: int) -> tuple[int, bytes] | None:
        """An attempt's stored output tail: (offset of its first byte, bytes); None when none is stored."""

    def prunable(self, finished_before: float, tag: str = "") -> tuple[list[tuple[str, str, TaskState]], int]:
        """Finished tasks that finished before the time (of that tag, if given): (id, name, state) in id order,
        and how many more match but are kept because a pending or running task depends on them."""

    def delete_tasks(self, ids: Sequence[str]) -> None:
        """Delete tasks with their attempts, output tails, tags and dependency links; their ids are never given
        again."""

    def vacuum_step(self, pages: int) -> int:
        """Give up to `pages` freed pages back to the file system; the number of free pages left."""

    def checkpoint(self) -> None:
        """Write the write-ahead log back into the file (the file shrinks after a vacuum)."""

    def file_bytes(self) -> int:
        """The store's size on disk."""


def open_store(path: Path, *, sync: str = "normal", lock: bool = True) -> Store:
    """The embedded default store, a SQLite file at path (sync 'full' or 'normal'; lock: one controller per file)."""
    return SqliteStore(path, sync=sync, lock=lock)
