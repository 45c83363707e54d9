"""Poison tasks: attempts that took their runner process down, counted per task in a row (no I/O)."""

from __future__ import annotations


class Deaths:
    """How many attempts of each task in a row ended with their runner dead (not cut off and back)."""

    def __init__(self, limit: int):
        self.limit = max(0, limit)  # 0: never give up on a task for this
        self._count: dict[str, int] = {}
        self._pending: set[tuple[str, int]] = set()  # lost out of touch: a death unless the same runner returns

    def died(self, task_id: str, attempt: int) -> bool:
        """The attempt's runner process died (or never came back): True when the task should fail now."""
        self._pending.discard((task_id, attempt))
        n = self._count[task_id] = self._count.get(task_id, 0) + 1
        return bool(self.limit) and n >= self.limit

    def maybe_died(self, task_id: str, attempt: int) -> bool:
        """Lost out of touch: counted as a death now, taken back if the same runner process returns with it."""
        give_up = self.died(task_id, attempt)
        self._pending.add((task_id, attempt))
        return give_up

    def returned(self, task_id: str, attempt: int) -> None:
        """The same runner process came back with the attempt: it did not kill its runner."""
        if (task_id, attempt) in self._pending:
            self._pending.discard((task_id, attempt))
            self._count[task_id] = max(0, self._count.get(task_id, 0) - 1)

    def ended(self, task_id: str) -> None:
        """An attempt ended with a report from its runner: the streak is broken."""
        self._count.pop(task_id, None)

    def message(self, task_id: str) -> str:
        n = self._count.get(task_id, 0)
        return (
            f"its runner died {n} time{'s' if n != 1 else ''} in a row running it (runner.poison_after = "
            f"{self.limit}); fix the task, then retry it (dtask retry {task_id})"
        )
