"""The listing of a controller with too many tasks to hold: a window of rows paged from ListTasks (no I/O).

Below the row cap every task is held and sorted, filtered and searched here, as always. Above it the task
table is the controller's id order for the tab's filter, loaded in pages around the focus; the tasks held
are the loaded rows plus the unfinished ones the Watch snapshot and events bring (up to a cap), and the
counts per state come from the controller's queue counts, kept up with the events.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import replace

from dtask_common.events import Snapshot, TaskEventKind
from dtask_common.models import ExecutorInfo, ExecutorUsage, QueueStatus, Task, TaskState

from dtask_tui.cluster import HISTORY, carry_progress
from dtask_tui.listing import FILTER_STATES, Filter, Listing
from dtask_tui.window import PAGE_SIZE, ROW_CAP, PageRequest, TaskQuery, TaskWindow

LIVE_CAP = 5000  # unfinished tasks held beyond the loaded rows
FINISHED_LIMIT = 500  # finished tasks in the Watch snapshot while paging

#: The state a task was in before an event of this kind, when the kind says so.
PREVIOUS_STATE = {TaskEventKind.DISPATCHED: TaskState.PENDING, TaskEventKind.FINISHED: TaskState.RUNNING}


def queue_counts(queue: QueueStatus) -> Counter[TaskState]:
    """Tasks per state as the controller counts them."""
    return Counter(
        {
            TaskState.PENDING: queue.pending,
            TaskState.RUNNING: queue.running,
            TaskState.SUCCEEDED: queue.succeeded,
            TaskState.FAILED: queue.failed,
            TaskState.CANCELLED: queue.cancelled,
            TaskState.LOST: queue.lost,
        }
    )


class PagedListing(Listing):
    """Listing that switches to a paged window of rows once the controller holds more than row_cap tasks."""

    def __init__(
        self,
        history: int = HISTORY,
        clock: Callable[[], float] = time.time,
        *,
        page_size: int = PAGE_SIZE,
        row_cap: int = ROW_CAP,
        live_cap: int = LIVE_CAP,
        finished_limit: int = FINISHED_LIMIT,
    ):
        super().__init__(history, clock)
        self.focus_task: str | None = None
        self.paged = False
        self.window = TaskWindow(page_size=page_size, cap=row_cap, margin=max(1, min(100, page_size // 5)))
        self.live_cap = live_cap
        self.paged_finished_limit = finished_limit
        self.counts_stale = False  # an event left the counts per state unknown: ask the controller

    # ---- the mode --------------------------------------------------------------------------
    def begin(self, queue: QueueStatus) -> None:
        """On (re)connecting: page when the controller holds more tasks than the cap, else hold them all."""
        self.queue = queue
        total = sum(queue_counts(queue).values())
        if total > self.window.cap:
            if not self.paged:
                self._enter_paged()
            self.counts = queue_counts(queue)
        elif self.paged:
            self.paged = False
            self.window.reset(TaskQuery())
            self._view = None

    def finished_limit(self) -> int:
        """What to ask the Watch snapshot for: every task when holding all, the newest few while paging."""
        return self.paged_finished_limit if self.paged else 0

    def _enter_paged(self) -> None:
        self.paged = True
        self.window.reset(self.query())
        live = [t for t in self.tasks.values() if not t.state.finished or t.id == self.focus_task]
        self.tasks = {t.id: t for t in live[: self.live_cap]}
        self._view = None

    def query(self) -> TaskQuery:
        """The controller-side filter of the current tab filter and search."""
        states = FILTER_STATES.get(self.task_filter, frozenset())
        text = self.search.strip()
        if text.startswith("@"):
            return TaskQuery(states, executor=text[1:])
        return TaskQuery(states, name_contains=text)

    # ---- the filter changes re-page --------------------------------------------------------
    def set_filter(self, f: Filter | str) -> None:
        super().set_filter(f)
        self._requery()

    def set_search(self, text: str) -> None:
        super().set_search(text)
        self._requery()

    def _requery(self) -> None:
        if self.paged and self.query() != self.window.query:
            self.window.reset(self.query())
            self._drop(list(self.tasks))

    # ---- what is held ----------------------------------------------------------------------
    def _keep(self, task: Task) -> bool:
        """Whether a task not among the loaded rows is held (unfinished ones up to the cap, and the focus)."""
        if task.id == self.focus_task:
            return True
        return not task.state.finished and len(self.tasks) < self.window.cap + self.live_cap

    def _drop(self, ids: Iterable[str]) -> None:
        """Let go of tasks that are neither loaded rows, nor unfinished, nor the focus."""
        for task_id in ids:
            t = self.tasks.get(task_id)
            if t is None or self.window.position(task_id) is not None or task_id == self.focus_task:
                continue
            if t.state.finished:
                del self.tasks[task_id]
                self.metrics.drop(task_id)

    def _snapshot_piece(self, piece: Snapshot) -> None:
        """While paging, the executors and counts of the snapshot's first piece show before its many tasks."""
        if not self.paged or self.synced:
            return
        if piece.executors:
            self.executors = {e.name: e for e in piece.executors}
            self._executors_changed()
        if piece.queue is not None:
            self.queue = piece.queue
            self.counts = queue_counts(piece.queue)

    def _stage_tasks(self, staged: list[Task], tasks: list[Task]) -> None:
        if not self.paged:
            staged.extend(tasks)
            if len(staged) > self.window.cap:
                self._enter_paged()
                staged[:] = [t for t in staged if not t.state.finished][: self.live_cap]
            return
        room = self.live_cap - len(staged)
        for t in tasks:
            if self.window.position(t.id) is not None or t.id == self.focus_task:
                staged.append(t)
            elif room > 0 and not t.state.finished:
                staged.append(t)
                room -= 1

    def replace_all(
        self,
        tasks: Iterable[Task],
        executors: Iterable[ExecutorInfo],
        usage: Iterable[ExecutorUsage],
        queue: QueueStatus | None,
    ) -> None:
        if not self.paged:
            super().replace_all(tasks, executors, usage, queue)
            if len(self.tasks) > self.window.cap:
                self._enter_paged()
                if queue is not None:
                    self.counts = queue_counts(queue)
            return
        rows = {i: self.tasks[i] for i in self.window.ids if i in self.tasks}
        counts = self.counts
        super().replace_all(tasks, executors, usage, queue)
        rows.update(self.tasks)
        self.tasks = rows
        self.counts = queue_counts(queue) if queue is not None else counts
        self.counts_stale = False

    def set_counts(self, queue: QueueStatus) -> None:
        """Counts per state fresh from the controller."""
        if self.paged:
            self.counts = queue_counts(queue)
        self.queue = replace(queue, paused=self.queue.paused)
        self.counts_stale = False

    # ---- live changes ----------------------------------------------------------------------
    def put_task(self, task: Task, kind: TaskEventKind | None = None) -> None:
        if not self.paged:
            super().put_task(task, kind)
            if len(self.tasks) > self.window.cap:
                self._enter_paged()
            return
        old = self.tasks.get(task.id)
        guess = old
        if old is not None:
            self.counts[old.state] -= 1
            self.counts[task.state] += 1
        elif kind is TaskEventKind.ADDED:
            self.counts[task.state] += 1
        elif kind in PREVIOUS_STATE and task.state is not PREVIOUS_STATE[kind]:
            self.counts[PREVIOUS_STATE[kind]] -= 1
            self.counts[task.state] += 1
            guess = replace(task, state=PREVIOUS_STATE[kind])
        else:
            self.counts_stale = True
        pos = self.window.position(task.id)
        self.window.changed(guess, task, kind is TaskEventKind.ADDED)
        loaded = self.window.position(task.id) is not None
        if pos is not None and not loaded and task.id == self.focus_task:
            ids = self.window.ids
            self.focus_task = ids[min(pos, len(ids) - 1)] if ids else None
        carry_progress(old, task)
        if loaded or self._keep(task) or old is not None and not task.state.finished:
            self.tasks[task.id] = task
            self.metrics.task(task)
        else:
            self.tasks.pop(task.id, None)
            self.metrics.drop(task.id)
        self._view = None

    # ---- pages -----------------------------------------------------------------------------
    def page_request(self) -> PageRequest | None:
        """The ListTasks page the focus needs next (marked in flight), or None."""
        if not self.paged:
            return None
        return self.window.want(self.view_position(self.focus_task) or 0)

    def page_loaded(self, req: PageRequest, tasks: list[Task], next_token: str, total: int) -> None:
        """Merge a page: rows join in id order, tasks already held keep their (newer) live copy."""
        if not self.paged or req.generation != self.window.generation:
            return
        for t in tasks:
            self.tasks.setdefault(t.id, t)
        self.window.loaded(req, [t.id for t in tasks], next_token, total)
        self._drop(self.window.evict(self.view_position(self.focus_task) or 0))
        self._view = None

    def page_failed(self, req: PageRequest) -> None:
        self.window.failed(req)

    # ---- the listed order ------------------------------------------------------------------
    def view(self) -> list[str]:
        if self.paged:
            return self.window.ids
        return super().view()

    def view_position(self, task_id: str | None) -> int | None:
        if self.paged:
            return self.window.position(task_id) if task_id else None
        return super().view_position(task_id)

    def first_row(self) -> int:
        """Rows of the whole list above the first loaded one."""
        return self.window.offset if self.paged else 0

    def view_total(self) -> int:
        """Rows of the whole list (not only the loaded ones)."""
        if not self.paged:
            return len(self.view())
        if self.search:
            return max(self.window.total, self.window.offset + len(self.window.ids))
        states = FILTER_STATES.get(self.task_filter)
        c = self.counts
        n = sum(c.values()) if states is None else sum(c[s] for s in states)
        return max(n, self.window.offset + len(self.window.ids))
