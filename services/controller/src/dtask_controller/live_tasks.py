"""Running first attempts as committed, kept in memory so that their events need no read of the store."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from dtask_common.models import Attempt, AttemptResult, Task, TaskState


class LiveTasks:
    """Tasks running their first attempt, exactly as the store holds them after the commit that dispatched them
    (the row read in that transaction, plus the attempt it inserted), and then as the commit that finishes them
    leaves them. Any other change to such a task drops it (drop()): its next event reads the store again.
    The Task objects handed out are never changed afterwards (each change makes new ones)."""

    def __init__(self) -> None:
        self._tasks: dict[str, Task] = {}

    def __len__(self) -> int:
        return len(self._tasks)

    def dispatched(self, row: Task, attempt: int, executor: str, gpu_ids: tuple[int, ...], now: float) -> Task | None:
        """The task just dispatched (row: its stored row without attempts, read after the attempt was added);
        None for a later attempt (the earlier ones are only in the store)."""
        if attempt != 1:
            self._tasks.pop(row.id, None)
            return None
        a = Attempt(row.id, 1, executor, tuple(gpu_ids), now, None, TaskState.RUNNING)
        t = self._tasks[row.id] = replace(row, attempts=[a])
        return t

    def attempt_ended(self, r: AttemptResult, finished_at: float) -> None:
        """The store recorded the end of attempt r.attempt (finish_attempt with these values)."""
        t = self._tasks.get(r.task_id)
        if t is None:
            return
        a = t.attempts[-1]
        if a.number != r.attempt or a.state is not TaskState.RUNNING:
            del self._tasks[r.task_id]
            return
        begun = r.started_at if r.started_at is not None else a.dispatched_at
        ended = replace(
            a,
            state=r.state,
            finished_at=finished_at,
            exit_code=r.exit_code,
            signal=r.signal,
            error=r.error,
            result=r.result,
            peak_rss_bytes=r.peak_rss_bytes,
            cpu_time_s=r.cpu_time_s,
            duration_s=max(0.0, finished_at - (begun if begun is not None else finished_at)),
        )
        self._tasks[r.task_id] = replace(t, attempts=[*t.attempts[:-1], ended])

    def finished(self, task_id: str, attempt: int, state: TaskState, error: str, result: Any) -> Task | None:
        """The task reached a final state after its attempt ended as recorded (attempt_ended): the task as
        stored now, and no longer kept; None when it is not known here."""
        t = self._tasks.pop(task_id, None)
        if t is None or t.attempts[-1].number != attempt or t.attempts[-1].state is TaskState.RUNNING:
            return None
        return replace(t, state=state, error=error, result=result)

    def drop(self, task_id: str) -> None:
        self._tasks.pop(task_id, None)

    def clear(self) -> None:
        self._tasks.clear()
