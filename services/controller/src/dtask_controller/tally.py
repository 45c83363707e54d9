"""What the controller counts as it goes (plain integers, read by the metrics at scrape time; no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Tally:
    """Counts since this controller process started; each only grows."""

    dispatches: int = 0  # attempts dispatched
    finishes: dict[str, int] = field(default_factory=dict)  # tasks finished, by outcome (the final state)
    retries: int = 0  # attempts queued again: automatic retries, LOST attempts run again, operator retries
    lost: int = 0  # attempts that became LOST
    rejected: dict[str, int] = field(default_factory=dict)  # runner reports not applied, by what they were
    pruned: int = 0  # finished tasks deleted by prune

    def finished(self, outcome: str) -> None:
        self.finishes[outcome] = self.finishes.get(outcome, 0) + 1

    def reject(self, reason: str) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1
