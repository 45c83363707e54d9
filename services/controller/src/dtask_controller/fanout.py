"""The Watch hub: numbered events fanned out to watchers through bounded queues (no I/O)."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from dtask_common.events import (
    EventBody,
    ExecutorEvent,
    ProgressEvent,
    TaskEvent,
    TaskEventKind,
    UsageEvent,
    WatchEvent,
)
from dtask_common.models import Task, WatchFilter

#: Task events a watch excluding unfinished ones still gets although the task is not finished after them.
_NOT_EXCLUDED = frozenset({TaskEventKind.RETRIED, TaskEventKind.ADDED})


class Watcher:
    """One Watch stream's queue; when it overflows the watcher is told to resync from a snapshot.

    With a filter that chooses tasks by state, tag or executor, view holds the ids of the matching tasks
    this watcher was sent (set by each snapshot): a task that stops matching gets one last event.
    """

    def __init__(self, limit: int, watch: WatchFilter):
        self.limit = limit
        self.filter = watch
        self.view: set[str] | None = set() if watch.by_attributes else None
        self.queue: deque[WatchEvent] = deque()
        self.overflowed = False
        self.closed = False
        self.wakeup = asyncio.Event()

    def wants(self, body: EventBody) -> bool:
        """Whether this watcher is sent the event (keeps the view up to date)."""
        f = self.filter
        if isinstance(body, TaskEvent):
            if not self._wants_task(body.task):
                return False
            # (a wait needs the ends, a retry that undoes one and new tasks: not the dispatches and requeues between)
            return not f.exclude_unfinished or body.task.state.finished or body.kind in _NOT_EXCLUDED
        if isinstance(body, ProgressEvent):
            if f.exclude_progress or not f.wants_id(body.task_id):
                return False
            return self.view is None or body.task_id in self.view
        if isinstance(body, UsageEvent):
            return not (f.exclude_usage or f.exclude_executors)
        return not (f.exclude_executors and isinstance(body, ExecutorEvent))

    def _wants_task(self, task: Task) -> bool:
        f = self.filter
        if not f.selects:
            return True
        if self.view is None:
            return f.wants_id(task.id)
        if f.matches(task):
            self.view.add(task.id)
            return True
        if task.id in self.view:
            self.view.discard(task.id)  # it leaves the filter: this is its last event
            return True
        return False

    def put(self, event: WatchEvent) -> None:
        if self.overflowed:
            return
        if len(self.queue) >= self.limit:
            self.queue.clear()  # free the memory now; the stream sends a fresh snapshot instead
            self.overflowed = True
        else:
            self.queue.append(event)
        self.wakeup.set()

    def close(self) -> None:
        self.closed = True
        self.wakeup.set()


class Fanout:
    """Assigns sequence numbers and delivers every event to every watcher, never blocking the caller."""

    def __init__(self, clock: Callable[[], float], queue_limit: int = 20_000):
        self.seq = 0
        self.queue_limit = queue_limit
        self._clock = clock
        self._watchers: set[Watcher] = set()
        self._deferred: list[EventBody] = []

    @property
    def active(self) -> bool:
        """Whether anyone listens (callers skip building events otherwise)."""
        return bool(self._watchers)

    def subscribe(
        self, exclude_usage: bool = False, exclude_progress: bool = False, watch: WatchFilter | None = None
    ) -> Watcher:
        """A new watcher of the events watch selects (None: every event but those excluded)."""
        if watch is None:
            watch = WatchFilter(exclude_usage=exclude_usage, exclude_progress=exclude_progress)
        self.flush_deferred()  # what came before the watcher's snapshot is in the snapshot, not its events
        w = Watcher(self.queue_limit, watch)
        self._watchers.add(w)
        return w

    def unsubscribe(self, w: Watcher) -> None:
        self._watchers.discard(w)

    def publish(self, body: EventBody) -> None:
        if self._deferred:
            self.flush_deferred()
        self._publish(body)

    def defer(self, body: EventBody) -> None:
        """Publish body at the next flush_deferred() (a tick) or before anything else is published, so the order
        holds: usage samples go out in bursts instead of waking every watcher once per sample."""
        if self._watchers:
            self._deferred.append(body)

    def flush_deferred(self) -> None:
        deferred, self._deferred = self._deferred, []
        for body in deferred:
            self._publish(body)

    def _publish(self, body: EventBody) -> None:
        self.seq += 1
        if not self._watchers:
            return
        event = WatchEvent(self.seq, self._clock(), body)
        for w in self._watchers:
            if w.wants(body):
                w.put(event)

    def resync_all(self) -> None:
        """Send every watcher a fresh snapshot (with resync) instead of events: tasks were removed."""
        self.flush_deferred()
        for w in self._watchers:
            w.queue.clear()
            w.overflowed = True
            w.wakeup.set()

    def close_all(self) -> None:
        for w in list(self._watchers):
            w.close()
        self._watchers.clear()

    def __len__(self) -> int:
        return len(self._watchers)
