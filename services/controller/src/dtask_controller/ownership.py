"""A runner speaks only for its own attempts: which reports and Hello claims a session may make."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Protocol

from dtask_controller.runner_messages import AckCmd, CancelCmd, Command, Hello

log = logging.getLogger(__name__)

FOREIGN_LIMIT = 20  # foreign reports a session may send before it is ended
_CACHED = 4096  # attempts whose recorded executor a session remembers


class Verdict(Enum):
    OWN = "own"  # dispatched to this executor (current, superseded or lost): apply it
    FOREIGN = "foreign"  # dispatched elsewhere, or never: not applied
    UNKNOWN = "unknown"  # no such task: the controller acks and ignores it


class Owners(Protocol):
    """Where the executor an attempt was dispatched to is looked up."""

    def running_executor(self, task_id: str, attempt: int) -> str:
        """The executor of the task's running attempt when it has that number, else ''."""

    def recorded_executor(self, task_id: str, attempt: int) -> str | None:
        """The executor the store recorded for that attempt; None when there is no such attempt."""

    def task_known(self, task_id: str) -> bool:
        """Whether the task exists (active or finished)."""


def decide(name: str, running: str, recorded: str | None, known: bool) -> Verdict:
    """The rule: only the executor an attempt was dispatched to may report on it."""
    if running == name or recorded == name:
        return Verdict.OWN
    if running or recorded is not None or known:
        return Verdict.FOREIGN
    return Verdict.UNKNOWN


# The metrics' label of each kind of report a guard rejects.
REJECT_REASONS = {
    "output": "output",
    "progress": "progress",
    "a result": "result",
    "a running attempt in its Hello": "hello_running",
    "a result in its Hello": "hello_result",
}


@dataclass
class ReportGuard:
    """One runner session's view of the rule: decides, logs once per attempt, counts, and ends a session
    that keeps reporting on attempts that are not its own."""

    name: str
    owners: Owners
    on_reject: Callable[[str], None] = lambda reason: None  # told the reason label of each rejection
    limit: int = FOREIGN_LIMIT
    rejected: int = 0  # every report and Hello claim not applied
    refusal: str = ""  # set once the session is to be ended with PERMISSION_DENIED
    _strikes: int = 0
    _recorded: dict[tuple[str, int], str] = field(default_factory=dict)
    _logged: set[tuple[str, int]] = field(default_factory=set)
    _told_to_stop: set[tuple[str, int]] = field(default_factory=set)

    def verdict(self, task_id: str, attempt: int) -> Verdict:
        running = self.owners.running_executor(task_id, attempt)
        if running == self.name:
            return Verdict.OWN  # the hot path: output and progress of a running attempt
        key = (task_id, attempt)
        recorded = self._recorded.get(key)
        if recorded is None:
            recorded = self.owners.recorded_executor(task_id, attempt)
            if recorded is not None:  # the executor of a recorded attempt never changes
                if len(self._recorded) >= _CACHED:
                    self._recorded.clear()
                self._recorded[key] = recorded
        known = recorded is not None or bool(running) or self.owners.task_known(task_id)
        return decide(self.name, running, recorded, known)

    def allows(self, what: str, task_id: str, attempt: int) -> bool:
        """A report on the stream (finished, output, progress): apply it? Counts and logs when not."""
        if self.verdict(task_id, attempt) is not Verdict.FOREIGN:
            return True
        key = (task_id, attempt)
        self._reject(what, key)
        if key not in self._told_to_stop:
            self._strikes += 1
            if self._strikes > self.limit and not self.refusal:
                self.refusal = (
                    f"executor {self.name} sent {self._strikes} reports on attempts that were not dispatched to "
                    f"it (the last: {what} of task {task_id} attempt {attempt}); none was applied and the session is "
                    "ended: a runner may report only on the attempts the controller gave it"
                )
                log.warning("executor %s: session ended: %s", self.name, self.refusal)
        return False

    def filter_hello(self, hello: Hello) -> tuple[Hello, list[Command]]:
        """The Hello without claims on attempts of other executors, and what to tell this runner about them
        once it is welcomed: stop running those, forget those results (neither is applied)."""
        running, unreported, tell = [], [], list[Command]()
        for r in hello.running:
            if self.verdict(r.task_id, r.attempt) is Verdict.FOREIGN:
                self._reject("a running attempt in its Hello", (r.task_id, r.attempt))
                self._told_to_stop.add((r.task_id, r.attempt))
                tell.append(CancelCmd(r.task_id, r.attempt, f"this attempt was not dispatched to {self.name}"))
            else:
                running.append(r)
        for res in hello.unreported:
            if self.verdict(res.task_id, res.attempt) is Verdict.FOREIGN:
                self._reject("a result in its Hello", (res.task_id, res.attempt))
                tell.append(AckCmd(res.task_id, res.attempt))
            else:
                unreported.append(res)
        if not tell:
            return hello, []
        return replace(hello, running=tuple(running), unreported=tuple(unreported)), tell

    def _reject(self, what: str, key: tuple[str, int]) -> None:
        self.rejected += 1
        self.on_reject(REJECT_REASONS.get(what, what))
        if key in self._logged:
            return
        if len(self._logged) >= _CACHED:
            self._logged.clear()
        self._logged.add(key)
        owner = self._recorded.get(key)
        where = f"was dispatched to {owner}" if owner else "was never dispatched"
        log.warning(
            "runner certificate %s (executor %s) reported %s for task %s attempt %d, which %s; not applied",
            self.name,
            self.name,
            what,
            key[0],
            key[1],
            where,
        )
