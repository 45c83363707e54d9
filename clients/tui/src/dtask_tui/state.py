"""Everything the TUI shows, as plain data fed by Watch events; no urwid here."""

from __future__ import annotations

import re
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from dtask_common.events import (
    ExecutorEvent,
    ExecutorEventKind,
    ProgressEvent,
    QueueEvent,
    Snapshot,
    TaskEvent,
    UsageEvent,
    WatchEvent,
)
from dtask_common.models import (
    ExecutorInfo,
    ExecutorUsage,
    Identity,
    QueueStatus,
    Task,
    TaskState,
    UsageSample,
)

HISTORY = 60
OUTPUT_LIMIT = 256 * 1024
MESSAGE_SECONDS = 6.0


class Tab(StrEnum):
    TASKS = "tasks"
    EXECUTORS = "executors"


class Layout(StrEnum):
    HORIZONTAL = "horizontal"  # table above, details below
    VERTICAL = "vertical"  # table left, details right
    TABLE = "table"  # table only


class ConnState(StrEnum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    POLLING = "polling"
    RECONNECTING = "reconnecting"


class Filter(StrEnum):
    ALL = "all"
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


FILTER_STATES: dict[Filter, frozenset[TaskState]] = {
    Filter.PENDING: frozenset({TaskState.PENDING}),
    Filter.RUNNING: frozenset({TaskState.RUNNING}),
    Filter.SUCCEEDED: frozenset({TaskState.SUCCEEDED}),
    Filter.FAILED: frozenset({TaskState.FAILED, TaskState.LOST}),
    Filter.CANCELLED: frozenset({TaskState.CANCELLED}),
}

SORTS = ("id", "name", "state", "executor", "dispatched", "finished", "duration", "attempts")
STATE_RANK = {TaskState.RUNNING: 0, TaskState.PENDING: 1, TaskState.FAILED: 2, TaskState.LOST: 3,
              TaskState.CANCELLED: 4, TaskState.SUCCEEDED: 5}
_DIGITS = re.compile(r"(\d+)")


def natural(text: str) -> tuple[object, ...]:
    """Sort key ordering 'task-9' before 'task-10'."""
    return tuple(int(p) if p.isdigit() else p.lower() for p in _DIGITS.split(text))


def _num(value: float | None) -> float:
    return float("inf") if value is None else value


@dataclass
class Connection:
    """Where the TUI is connected, as whom, and how well."""

    address: str
    state: ConnState = ConnState.CONNECTING
    identity: Identity | None = None
    error: str = ""
    since: float | None = None
    attempts: int = 0

    @property
    def can_act(self) -> bool:
        """False for a viewer certificate: state-changing actions are unavailable."""
        return self.identity is None or self.identity.role != "viewer"


@dataclass
class OutputTail:
    """The last bytes of one attempt's output."""

    task_id: str
    attempt: int = 0
    data: bytearray = field(default_factory=bytearray)
    done: bool = False
    error: str = ""

    def add(self, chunk: bytes, limit: int = OUTPUT_LIMIT) -> None:
        self.data += chunk
        if len(self.data) > limit:
            del self.data[: len(self.data) - limit]

    def lines(self, last: int | None = None) -> list[str]:
        """Decoded lines (invalid UTF-8 replaced; carriage-return redraws collapsed to their last state)."""
        text = self.data.decode("utf-8", "replace")
        out = [seg.rsplit("\r", 1)[-1] if "\r" in seg else seg for seg in text.split("\n")]
        if out and out[-1] == "":
            out.pop()
        out = [line.replace("\t", "    ") for line in out]
        return out[-last:] if last else out


@dataclass
class Message:
    """A short note in the bottom bar (action results, errors)."""

    text: str
    level: str = "info"  # info | error
    at: float = 0.0


class TuiState:
    """Tasks, executors, usage history, filters, focus and connection; fed by Watch events."""

    def __init__(self, address: str = "", history: int = HISTORY, clock: Callable[[], float] = time.time):
        self.clock = clock
        self.history = history
        self.connection = Connection(address)
        self.tasks: dict[str, Task] = {}
        self.executors: dict[str, ExecutorInfo] = {}
        self.usage: dict[str, deque[UsageSample]] = {}
        self.queue = QueueStatus()
        self.counts: Counter[TaskState] = Counter()
        self.synced = False
        self.tab = Tab.TASKS
        self.layout = Layout.HORIZONTAL
        self.show_help = False
        self.help_top = 0
        self.task_filter = Filter.ALL
        self.search = ""
        self.sort = "id"
        self.reverse = False
        self.focus_task: str | None = None
        self.focus_executor: str | None = None
        self.output: OutputTail | None = None
        self.output_open = False
        self.output_top: int | None = None  # first line shown in the output view; None follows the end
        self.message: Message | None = None
        self.version = 0
        self.events_applied = 0
        self._staging: Snapshot | None = None
        self._view: list[str] | None = None
        self._view_pos: dict[str, int] = {}
        self._exec_view: list[str] | None = None
        self._natural_keys: dict[str, tuple[object, ...]] = {}

    # ---- events -------------------------------------------------------------------------
    def apply(self, event: WatchEvent) -> None:
        """Fold one Watch event into the state."""
        body = event.body
        self.events_applied += 1
        if event.resync:
            self.synced = False
            self._staging = None
        if isinstance(body, Snapshot):
            self._snapshot_chunk(body)
        elif isinstance(body, TaskEvent):
            self.put_task(body.task)
        elif isinstance(body, ProgressEvent):
            self._progress(body)
        elif isinstance(body, UsageEvent):
            self.add_sample(body.executor, body.sample)
        elif isinstance(body, ExecutorEvent):
            self._executor_event(body)
        elif isinstance(body, QueueEvent):
            self.queue = body.queue
        self.version += 1

    def apply_all(self, events: Iterable[WatchEvent]) -> None:
        for ev in events:
            self.apply(ev)

    def _snapshot_chunk(self, chunk: Snapshot) -> None:
        st = self._staging
        if st is None:
            st = self._staging = Snapshot(tasks=[], executors=[], usage=[], queue=None, last=False)
        st.tasks.extend(chunk.tasks)
        st.executors.extend(chunk.executors)
        st.usage.extend(chunk.usage)
        if chunk.queue is not None:
            st.queue = chunk.queue
        if chunk.last:
            self._staging = None
            self.replace_all(st.tasks, st.executors, st.usage, st.queue)

    def replace_all(self, tasks: Iterable[Task], executors: Iterable[ExecutorInfo],
                    usage: Iterable[ExecutorUsage], queue: QueueStatus | None) -> None:
        """Take a complete picture (a Watch snapshot or one round of polling)."""
        self.tasks = {t.id: t for t in tasks}
        self.counts = Counter(t.state for t in self.tasks.values())
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
        for name, ex in self.executors.items():
            if name not in self.usage:
                hist = deque(old.get(name, ()), maxlen=self.history)
                if ex.last_usage is not None and (not hist or hist[-1].at < ex.last_usage.at):
                    hist.append(ex.last_usage)
                self.usage[name] = hist
        if queue is not None:
            self.queue = queue
        self.synced = True
        self._view = None
        self._exec_view = None
        self.version += 1

    def put_task(self, task: Task) -> None:
        """Add or replace one task."""
        old = self.tasks.get(task.id)
        if task.progress is None and old is not None and old.progress is not None and \
                task.state is TaskState.RUNNING and len(task.attempts) == len(old.attempts):
            task.progress = old.progress
        self.tasks[task.id] = task
        if old is not None:
            self.counts[old.state] -= 1
        self.counts[task.state] += 1
        if old is None or old.state is not task.state or self.sort not in ("id", "name") \
                or old.spec.name != task.spec.name:
            self._view = None
        self.version += 1

    def _progress(self, ev: ProgressEvent) -> None:
        task = self.tasks.get(ev.task_id)
        if task is None:
            return
        current = task.current
        if current is not None and ev.attempt and current.number != ev.attempt:
            return
        task.progress = ev.progress

    def add_sample(self, executor: str, sample: UsageSample) -> None:
        hist = self.usage.get(executor)
        if hist is None:
            hist = self.usage[executor] = deque(maxlen=self.history)
        hist.append(sample)
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
        self._exec_view = None

    # ---- connection and messages --------------------------------------------------------
    def set_connection(self, state: ConnState, error: str = "", identity: Identity | None = None) -> None:
        c = self.connection
        if state is not c.state:
            c.since = self.clock()
        c.state = state
        c.error = error
        if identity is not None:
            c.identity = identity
        if state is ConnState.CONNECTED:
            c.attempts = 0
        elif state is ConnState.RECONNECTING:
            c.attempts += 1
        self.version += 1

    def say(self, text: str, level: str = "info") -> None:
        self.message = Message(text, level, self.clock())
        self.version += 1

    def current_message(self) -> Message | None:
        m = self.message
        if m is not None and self.clock() - m.at > MESSAGE_SECONDS:
            self.message = m = None
        return m

    # ---- task view: filter, search, sort ------------------------------------------------
    def set_filter(self, f: Filter | str) -> None:
        self.task_filter = Filter(f)
        self._view = None
        self.version += 1

    def cycle_filter(self, step: int = 1) -> None:
        items = list(Filter)
        self.set_filter(items[(items.index(self.task_filter) + step) % len(items)])

    def set_search(self, text: str) -> None:
        self.search = text
        self._view = None
        self.version += 1

    def set_sort(self, key: str, reverse: bool | None = None) -> None:
        if key not in SORTS:
            raise ValueError(f"unknown sort {key!r}; use one of {', '.join(SORTS)}")
        self.sort = key
        if reverse is not None:
            self.reverse = reverse
        self._view = None
        self.version += 1

    def cycle_sort(self) -> None:
        self.set_sort(SORTS[(SORTS.index(self.sort) + 1) % len(SORTS)])

    def toggle_reverse(self) -> None:
        self.set_sort(self.sort, not self.reverse)

    def matches(self, task: Task) -> bool:
        states = FILTER_STATES.get(self.task_filter)
        if states is not None and task.state not in states:
            return False
        if self.search:
            needle = self.search.lower()
            if needle.startswith("@"):
                return task.executor.lower() == needle[1:]
            return (needle in task.name.lower() or task.id.lower().startswith(needle)
                    or any(needle in t.lower() for t in task.spec.tags))
        return True

    def _sort_key(self) -> Callable[[Task], Any]:
        key = self.sort
        nat = self._natural
        if key == "name":
            return lambda t: (nat(t.name), nat(t.id))
        if key == "state":
            return lambda t: (STATE_RANK.get(t.state, 9), nat(t.id))
        if key == "executor":
            return lambda t: (t.executor == "", t.executor, nat(t.id))
        if key == "dispatched":
            return lambda t: (_num(t.dispatched_at), nat(t.id))
        if key == "finished":
            return lambda t: (_num(t.finished_at), nat(t.id))
        if key == "duration":
            return lambda t: (_num(self.elapsed(t)), nat(t.id))
        if key == "attempts":
            return lambda t: (len(t.attempts), nat(t.id))
        return lambda t: (_num(t.submitted_at), nat(t.id))

    def _natural(self, text: str) -> tuple[object, ...]:
        """natural(text), remembered (ids and names repeat on every sort)."""
        key = self._natural_keys.get(text)
        if key is None:
            if len(self._natural_keys) > 200_000:
                self._natural_keys.clear()
            key = self._natural_keys[text] = natural(text)
        return key

    def view(self) -> list[str]:
        """Ids of the tasks shown, in display order (recomputed only after a relevant change)."""
        if self._view is None:
            chosen = [t for t in self.tasks.values() if self.matches(t)]
            chosen.sort(key=self._sort_key(), reverse=self.reverse)
            self._view = [t.id for t in chosen]
            self._view_pos = {tid: i for i, tid in enumerate(self._view)}
        return self._view

    def executor_view(self) -> list[str]:
        if self._exec_view is None:
            self._exec_view = sorted(self.executors, key=natural)
        return self._exec_view

    def filter_counts(self) -> dict[Filter, int]:
        c = self.counts
        return {
            Filter.ALL: sum(c.values()),
            Filter.PENDING: c[TaskState.PENDING],
            Filter.RUNNING: c[TaskState.RUNNING],
            Filter.SUCCEEDED: c[TaskState.SUCCEEDED],
            Filter.FAILED: c[TaskState.FAILED] + c[TaskState.LOST],
            Filter.CANCELLED: c[TaskState.CANCELLED],
        }

    def elapsed(self, task: Task) -> float | None:
        """Run time so far (running) or total (finished)."""
        start = task.dispatched_at
        if start is None:
            return None
        end = task.finished_at if task.state.finished else None
        return (end if end is not None else self.clock()) - start

    # ---- focus ---------------------------------------------------------------------------
    def rows(self) -> list[str]:
        return self.view() if self.tab is Tab.TASKS else self.executor_view()

    def focus_index(self) -> int:
        """Index of the focused row in the current tab (0 when nothing is focused)."""
        rows = self.rows()
        if not rows:
            return 0
        if self.tab is Tab.TASKS:
            self.view()
            pos = self._view_pos.get(self.focus_task or "")
        else:
            pos = rows.index(self.focus_executor) if self.focus_executor in self.executors and \
                self.focus_executor in rows else None
        if pos is None:
            pos = 0
            self._set_focus_key(rows[0])
        return pos

    def _set_focus_key(self, key: str | None) -> None:
        if self.tab is Tab.TASKS:
            self.focus_task = key
        else:
            self.focus_executor = key

    def set_focus_index(self, index: int) -> None:
        rows = self.rows()
        if not rows:
            return
        self._set_focus_key(rows[max(0, min(len(rows) - 1, index))])
        self.version += 1

    def move_focus(self, delta: int) -> None:
        self.set_focus_index(self.focus_index() + delta)

    def focused_task(self) -> Task | None:
        if not self.tasks:
            return None
        view = self.view()
        if view and self.focus_task not in self._view_pos:
            self.focus_task = view[0]
        return self.tasks.get(self.focus_task or "") if view else None

    def focused_executor(self) -> ExecutorInfo | None:
        if self.focus_executor not in self.executors:
            view = self.executor_view()
            self.focus_executor = view[0] if view else None
        return self.executors.get(self.focus_executor or "")

    def switch_tab(self, tab: Tab | str) -> None:
        self.tab = Tab(tab)
        self.version += 1

    def set_layout(self, layout: Layout | str) -> None:
        self.layout = Layout(layout)
        self.version += 1

    # ---- output --------------------------------------------------------------------------
    def output_for(self, task_id: str, attempt: int) -> OutputTail:
        """The output buffer for this attempt, starting a fresh one when it changes."""
        if self.output is None or self.output.task_id != task_id or self.output.attempt != attempt:
            self.output = OutputTail(task_id, attempt)
        return self.output

    def executor_tasks(self, name: str) -> list[Task]:
        ex = self.executors.get(name)
        ids = list(ex.running_task_ids) if ex is not None else []
        found = [self.tasks[i] for i in ids if i in self.tasks]
        if not found:
            found = [t for t in self.tasks.values() if t.state is TaskState.RUNNING and t.executor == name]
        return found
