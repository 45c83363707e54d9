"""The cluster as Watch events and polls leave it: tasks, executors, usage history, queue (no urwid here)."""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable
from typing import assert_never

from dtask_common.events import (
    ExecutorEvent,
    ExecutorEventKind,
    ProgressEvent,
    QueueEvent,
    Snapshot,
    TaskEvent,
    TaskEventKind,
    UsageEvent,
    WatchEvent,
)
from dtask_common.models import ExecutorInfo, ExecutorUsage, QueueStatus, Task, TaskState, UsageSample
from dtask_common.progress import newest

from dtask_tui.live_metrics import LiveMetrics

HISTORY = 60


def carry_progress(old: Task | None, new: Task) -> None:
    """A task event carries no progress: a running attempt keeps the progress it had."""
    if (
        new.progress is None
        and old is not None
        and old.progress is not None
        and new.state is TaskState.RUNNING
        and len(new.attempts) == len(old.attempts)
    ):
        new.progress = old.progress
    elif (
        new.progress is not None
        and old is not None
        and old.progress is not None
        and len(new.attempts) == len(old.attempts)
    ):
        new.progress = newest(old.progress, new.progress)
    if (
        new.usage is None
        and old is not None
        and old.usage is not None
        and new.state is TaskState.RUNNING
        and new.current is not None
        and old.usage.attempt == new.current.number
    ):
        new.usage = old.usage


def carry_usage(tasks: dict[str, Task], sample: UsageSample) -> None:
    """Put each running attempt's usage from a sample on its task (when it is that task's current attempt)."""
    for a in sample.attempts:
        t = tasks.get(a.task_id)
        if t is not None and t.state is TaskState.RUNNING and t.current is not None and t.current.number == a.attempt:
            t.usage = a


class Cluster:
    """Tasks, executors, per-executor usage history and the queue; fed by Watch events or polling."""

    def __init__(self, history: int = HISTORY):
        self.history = history
        self.tasks: dict[str, Task] = {}
        self.executors: dict[str, ExecutorInfo] = {}
        self.usage: dict[str, deque[UsageSample]] = {}
        self.queue = QueueStatus()
        self.counts: Counter[TaskState] = Counter()
        self.synced = False
        self._staging: Snapshot | None = None
        self.metrics = LiveMetrics()

    # ---- change hooks (a subclass drops what it derived from the changed data) -------------
    def _task_changed(self, old: Task | None, new: Task) -> None:
        """Called after one task was added or replaced."""

    def _executors_changed(self) -> None:
        """Called after an executor came, changed or went."""

    def _all_replaced(self) -> None:
        """Called after a complete picture replaced everything."""

    def _snapshot_piece(self, piece: Snapshot) -> None:
        """Called for each piece of a snapshot as it comes (before the whole is taken)."""

    def _stage_tasks(self, staged: list[Task], tasks: list[Task]) -> None:
        """Keep a snapshot piece's tasks until the snapshot is complete (a subclass may keep fewer)."""
        staged.extend(tasks)

    # ---- events ----------------------------------------------------------------------------
    def apply(self, event: WatchEvent) -> None:
        """Fold one Watch event into the state; an event type not handled here is an error."""
        body = event.body
        if event.resync:
            self.synced = False
            self._staging = None
        match body:
            case Snapshot():
                self._snapshot_chunk(body)
            case TaskEvent():
                self.put_task(body.task, body.kind)
            case ProgressEvent():
                self._progress(body)
            case UsageEvent():
                self.add_sample(body.executor, body.sample)
            case ExecutorEvent():
                self._executor_event(body)
            case QueueEvent():
                self.queue = body.queue
            case _:
                assert_never(body)

    def _snapshot_chunk(self, chunk: Snapshot) -> None:
        self._snapshot_piece(chunk)
        st = self._staging
        if st is None:
            st = self._staging = Snapshot(tasks=[], executors=[], usage=[], queue=None, last=False)
        self._stage_tasks(st.tasks, chunk.tasks)
        st.executors.extend(chunk.executors)
        st.usage.extend(chunk.usage)
        if chunk.queue is not None:
            st.queue = chunk.queue
        if chunk.last:
            self._staging = None
            self.replace_all(st.tasks, st.executors, st.usage, st.queue)

    def replace_all(
        self,
        tasks: Iterable[Task],
        executors: Iterable[ExecutorInfo],
        usage: Iterable[ExecutorUsage],
        queue: QueueStatus | None,
    ) -> None:
        """Take a complete picture (a Watch snapshot or one round of polling)."""
        self.tasks = {t.id: t for t in tasks}
        self.counts = Counter(t.state for t in self.tasks.values())
        self.metrics.clear()
        for t in self.tasks.values():
            self.metrics.task(t)
        self.executors = {e.name: e for e in executors}
        old = self.usage
        self.usage = {}
        for u in usage:
            hist: deque[UsageSample] = deque(maxlen=self.history)
            prev = old.get(u.executor)
            samples = list(u.history)
            if not samples and prev is not None:
                samples = list(prev)
            if u.latest is not None and (not samples or samples[-1].at < u.latest.at):
                samples.append(u.latest)
            hist.extend(samples)
            self.usage[u.executor] = hist
            if u.executor in self.executors and u.latest is not None:
                self.executors[u.executor].last_usage = u.latest
            if u.latest is not None:
                carry_usage(self.tasks, u.latest)
        for name, ex in self.executors.items():
            if name not in self.usage:
                hist = deque(old.get(name, ()), maxlen=self.history)
                if ex.last_usage is not None and (not hist or hist[-1].at < ex.last_usage.at):
                    hist.append(ex.last_usage)
                self.usage[name] = hist
        if queue is not None:
            self.queue = queue
        self.synced = True
        self._all_replaced()

    def put_task(self, task: Task, kind: TaskEventKind | None = None) -> None:
        """Add or replace one task (kind: what the Watch event said happened, when it came from one)."""
        old = self.tasks.get(task.id)
        carry_progress(old, task)
        self.tasks[task.id] = task
        self.metrics.task(task)
        if old is not None:
            self.counts[old.state] -= 1
        self.counts[task.state] += 1
        self._task_changed(old, task)

    def _progress(self, ev: ProgressEvent) -> None:
        task = self.tasks.get(ev.task_id)
        if task is None:
            return
        current = task.current
        if current is not None and ev.attempt and current.number != ev.attempt:
            return
        self.metrics.points(task, ev.task_id, ev.attempt, ev.metrics)
        if ev.progress is not None:
            task.progress = newest(task.progress, ev.progress) if current is not None else ev.progress

    def add_sample(self, executor: str, sample: UsageSample) -> None:
        hist = self.usage.get(executor)
        if hist is None:
            hist = self.usage[executor] = deque(maxlen=self.history)
        hist.append(sample)
        carry_usage(self.tasks, sample)
        ex = self.executors.get(executor)
        if ex is not None:
            ex.last_usage = sample
            ex.last_seen = sample.at

    def _executor_event(self, ev: ExecutorEvent) -> None:
        ex = ev.executor
        if ev.kind is ExecutorEventKind.GONE:
            self.executors.pop(ex.name, None)
            self.usage.pop(ex.name, None)
        else:
            old = self.executors.get(ex.name)
            if ex.last_usage is None and old is not None:
                ex.last_usage = old.last_usage
            self.executors[ex.name] = ex
            self.usage.setdefault(ex.name, deque(maxlen=self.history))
        self._executors_changed()

    # ---- queries ---------------------------------------------------------------------------
    def executor_tasks(self, name: str) -> list[Task]:
        """The tasks running on an executor (by its list, else by the tasks' own executor)."""
        ex = self.executors.get(name)
        ids = list(ex.running_task_ids) if ex is not None else []
        found = [self.tasks[i] for i in ids if i in self.tasks]
        if not found:
            found = [t for t in self.tasks.values() if t.state is TaskState.RUNNING and t.executor == name]
        return found
