"""What a wait() does with Watch events and with a lost stream (no I/O: the shells stream and sleep)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from dtask_common import events as ev
from dtask_common.models import Task, TaskState

from dtask_client._retry import Reconnect, reconnect_deadline
from dtask_client.errors import ControllerUnavailable, DtaskError, NotFound, WaitTimeout

#: A deadline this close counts as reached (the stream's own deadline fires a little early or late).
DEADLINE_SLACK_S = 0.05


@dataclass
class WaitState:
    """Tracks tasks from a Watch stream until the awaited ones are all finished (no I/O).

    Keeps the set of awaited tasks not yet finished, and how many are in each state, so each event costs O(1)
    whatever the queue size.
    """

    ids: list[str] | None
    tasks: dict[str, Task] = field(default_factory=dict)
    _unfinished: set[str] = field(default_factory=set)
    _counts: Counter[TaskState] = field(default_factory=Counter)
    _snapshot_done: bool = False
    _snapshot_just_done: bool = False

    def __post_init__(self) -> None:
        if self.ids is not None:
            self._unfinished = set(self.ids)  # unknown until the snapshot shows them

    def apply(self, event: ev.WatchEvent) -> None:
        body = event.body
        if event.resync:
            self._snapshot_done = False
        if isinstance(body, ev.Snapshot):
            for t in body.tasks:
                self._put(t)
            if body.last:
                self._snapshot_done = self._snapshot_just_done = True
        elif isinstance(body, ev.TaskEvent):
            self._put(body.task)
        elif isinstance(body, ev.ProgressEvent):
            current = self.tasks.get(body.task_id)
            if current is not None and body.progress is not None:
                current.progress = body.progress

    def _put(self, t: Task) -> None:
        if self.ids is not None and t.id not in self._unfinished and t.id not in self.tasks:
            return  # not awaited
        old = self.tasks.get(t.id)
        if old is not None:
            self._counts[old.state] -= 1
        self._counts[t.state] += 1
        self.tasks[t.id] = t
        if t.state.finished:
            self._unfinished.discard(t.id)
        else:
            self._unfinished.add(t.id)

    @property
    def ready(self) -> bool:
        return self._snapshot_done

    def missing(self) -> list[str]:
        """Awaited ids the controller does not know (meaningful once the snapshot is complete)."""
        return [i for i in self.ids or () if i not in self.tasks]

    def check(self) -> None:
        """Raise NotFound for awaited ids that the snapshot just completed does not hold (once per snapshot)."""
        if not self._snapshot_just_done:
            return
        self._snapshot_just_done = False
        if gone := self.missing():
            raise NotFound(f"no task with id {gone[0]!r}; list tasks with ListTasks (dtask tasks)", "NOT_FOUND")

    def watched(self) -> list[Task]:
        if self.ids is None:
            return sorted(self.tasks.values(), key=_id_key)
        return [self.tasks[i] for i in self.ids if i in self.tasks]

    def done(self) -> bool:
        return self._snapshot_done and not self._unfinished

    def counts(self) -> WaitCounts:
        return WaitCounts({s: n for s in TaskState if (n := self._counts[s])}, len(self.tasks))


def _id_key(t: Task) -> tuple[int, str]:
    return (int(t.id), t.id) if t.id.isdigit() else (1 << 62, t.id)


@dataclass(frozen=True)
class WaitCounts:
    """How many of the awaited tasks the controller has shown, and how many are in each state: what a progress
    line shows, at O(states) per message whatever the number of tasks (wait()'s on_counts gets it)."""

    by_state: Mapping[TaskState, int]
    total: int

    @property
    def finished(self) -> int:
        return sum(n for s, n in self.by_state.items() if s.finished)

    @staticmethod
    def of(tasks: list[Task]) -> WaitCounts:
        """The counts of a list of tasks (O(tasks): once, for the end of a wait)."""
        c = Counter(t.state for t in tasks)
        return WaitCounts({s: n for s in TaskState if (n := c[s])}, len(tasks))


@dataclass(frozen=True)
class Progress:
    """The watched tasks after an event (see Waiter.apply_all); done when they are all finished (wait() returns them)."""

    tasks: list[Task]
    done: bool


@dataclass
class Waiter:
    """One wait(): a fresh WaitState per Watch stream, and what the end of a stream means.

    Once a stream delivered a complete snapshot, losing the controller is waited out (a restart loses
    nothing) for up to give_up_after seconds (None: as long as the wait's own timeout allows).
    """

    ids: list[str] | None
    timeout: float | None
    now: float
    address: str
    call_timeout: float
    give_up_after: float | None = None
    state: WaitState = field(init=False)
    deadline: float | None = field(init=False)
    connected: bool = False

    def __post_init__(self) -> None:
        self.deadline = None if self.timeout is None else self.now + self.timeout
        self.state = WaitState(self.ids)

    def open(self, now: float) -> float | None:
        """Start over with a fresh snapshot; returns the stream's timeout."""
        self.state = WaitState(self.ids)
        return None if self.deadline is None else max(0.001, self.deadline - now)

    def apply(self, event: ev.WatchEvent) -> Progress | None:
        """Apply one event; None until the snapshot is complete. Raises NotFound for an unknown id."""
        self.state.apply(event)
        self.state.check()
        if not self.state.ready:
            return None
        self.connected = True
        return Progress(self.state.watched(), self.state.done())

    def counts(self) -> WaitCounts:
        """How many of the tasks of the current stream are in each state (O(states))."""
        return self.state.counts()

    def apply_all(self, events: list[ev.WatchEvent], *, every: bool = False) -> Progress | None:
        """Apply the events of one message in order, as apply(), stopping at the first after which all are done.

        Listing the watched tasks costs O(tasks), so it is done once they are all done, or after each message
        with every=True (an on_change to call); otherwise the Progress of an unfinished wait lists none."""
        state = self.state
        for event in events:
            state.apply(event)
            state.check()
            if state.ready and state.done():
                break
        if not state.ready:
            return None
        self.connected = True
        done = state.done()
        return Progress(state.watched() if done or every else [], done)

    def ended(self, error: ControllerUnavailable | None, now: float) -> Reconnect | DtaskError:
        """The stream ended (error None) or failed: wait for the controller, or the error to raise."""
        if error is None:
            error = ControllerUnavailable(
                f"the controller at {self.address} ended the watch stream before the tasks finished"
            )
        elif error.code == "DEADLINE_EXCEEDED" and self._past_deadline(now):
            return self.timed_out()
        if not self.connected:
            return error
        return Reconnect(error, reconnect_deadline(now, self.deadline, self.give_up_after), self.call_timeout)

    def reconnect_failed(self, error: ControllerUnavailable, now: float) -> DtaskError:
        return self.timed_out() if self._past_deadline(now) else error

    def timed_out(self) -> WaitTimeout:
        return WaitTimeout(f"tasks still unfinished after {self.timeout:g} s", "DEADLINE_EXCEEDED")

    def _past_deadline(self, now: float) -> bool:
        return self.deadline is not None and now >= self.deadline - DEADLINE_SLACK_S
