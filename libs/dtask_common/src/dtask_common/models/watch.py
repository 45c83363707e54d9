"""What a Watch stream asks for: which tasks, how many finished ones, which kinds of events, batching."""

from __future__ import annotations

from dataclasses import dataclass, field

from dtask_common.models.tasks import FINISHED_STATES, Task, TaskState

MAX_WATCH_IDS = 10_000  # task_ids of one Watch
MAX_WATCH_BATCH = 1000  # events in one batched message


@dataclass(frozen=True, slots=True)
class WatchFilter:
    """A Watch's selection of tasks and events; the default selects everything, one event per message.

    Tasks: those of task_ids (empty: every task) in any of states (empty: all), carrying tag, whose latest
    attempt runs or ran on executor; of the finished ones the snapshot holds only the newest finished_limit
    (0: all). Raises ValueError (a message saying what to send instead) when a value is out of range.
    """

    task_ids: tuple[str, ...] = ()
    states: frozenset[TaskState] = frozenset()
    tag: str = ""
    executor: str = ""
    finished_limit: int = 0
    exclude_usage: bool = False
    exclude_progress: bool = False
    exclude_executors: bool = False
    max_batch: int = 0
    exclude_unfinished: bool = False
    """Task events only for a task finished after them, a finished one retried or a task added (a wait's); the
    snapshot still holds every selected task."""
    _ids: frozenset[str] = field(init=False, repr=False, compare=False, default=frozenset())

    def __post_init__(self) -> None:
        if len(self.task_ids) > MAX_WATCH_IDS:
            raise ValueError(
                f"{len(self.task_ids)} task_ids in one Watch; at most {MAX_WATCH_IDS} are accepted: "
                "watch by tag or state instead, or split the ids over several watches"
            )
        if self.finished_limit < 0:
            raise ValueError(f"finished_limit must be >= 0 (0: every finished task), not {self.finished_limit}")
        if not 0 <= self.max_batch <= MAX_WATCH_BATCH:
            raise ValueError(
                f"max_batch must be between 0 and {MAX_WATCH_BATCH} (0 or 1: one event per message), "
                f"not {self.max_batch}"
            )
        object.__setattr__(self, "task_ids", tuple(dict.fromkeys(self.task_ids)))  # in order, once each
        object.__setattr__(self, "states", frozenset(self.states))
        object.__setattr__(self, "_ids", frozenset(self.task_ids))

    @property
    def selects(self) -> bool:
        """Whether only some tasks are watched (else every task, as a Watch without a filter)."""
        return bool(self.task_ids or self.states or self.tag or self.executor)

    @property
    def by_attributes(self) -> bool:
        """Whether tasks are chosen by what they are (state, tag, executor), not only by id."""
        return bool(self.states or self.tag or self.executor)

    @property
    def batch(self) -> int:
        """Events per message (at least 1)."""
        return max(1, self.max_batch)

    def matches(self, task: Task) -> bool:
        """Whether the task, as it is now, is one this filter selects."""
        if self.task_ids and task.id not in self._ids:
            return False
        if self.states and task.state not in self.states:
            return False
        if self.tag and self.tag not in task.spec.tags:
            return False
        return not self.executor or (bool(task.attempts) and task.attempts[-1].executor == self.executor)

    def wants_id(self, task_id: str) -> bool:
        """False when the id alone rules the task out."""
        return not self.task_ids or task_id in self._ids

    @property
    def unfinished_states(self) -> frozenset[TaskState]:
        """The selected states a task has before it finishes."""
        return (self.states or frozenset(TaskState)) - FINISHED_STATES

    @property
    def finished_states(self) -> frozenset[TaskState]:
        """The selected states of finished tasks."""
        return (self.states or frozenset(TaskState)) & FINISHED_STATES
