"""The Results view's model: which sweep it shows (a matrix base name or a tag), its sort and scroll; no urwid."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from dtask_common.models import Task
from dtask_common.models.params import base_name
from dtask_common.results_table import ResultsTable, build


class SweepBy(StrEnum):
    NAME = "name"  # tasks of one matrix base name (train[...])
    TAG = "tag"  # tasks carrying one tag


@dataclass(slots=True)
class SweepResults:
    """The sweep shown and how: by name or tag, the sort column (None: submission order), its order, scroll."""

    by: SweepBy
    key: str
    tag: str = ""  # the focused task's first tag, what SWEEP_BY switches to
    name: str = ""  # the focused task's base name, what SWEEP_BY switches back to
    sort: str | None = None
    desc: bool = False
    top: int = 0

    @classmethod
    def of(cls, task: Task) -> SweepResults:
        """The sweep of a task: its matrix base name."""
        name = base_name(task.name)
        return cls(SweepBy.NAME, name, tag=task.spec.tags[0] if task.spec.tags else "", name=name)

    @property
    def title(self) -> str:
        return f"{self.key}[...]" if self.by is SweepBy.NAME else f"tag {self.key}"

    def selects(self, task: Task) -> bool:
        if self.by is SweepBy.NAME:
            return base_name(task.name) == self.key
        return self.key in task.spec.tags

    def table(self, tasks: Iterable[Task]) -> ResultsTable:
        """The table of the sweep's tasks among these, sorted as asked (a sort column that went away: id order)."""
        chosen = [t for t in tasks if self.selects(t)]
        table = build(chosen)
        if self.sort is not None and self.sort in table.names:
            table = build(chosen, sort=self.sort, desc=self.desc)
        return table

    def toggle_by(self) -> bool:
        """Switch between the base name and the tag; False when the task has no tag."""
        if self.by is SweepBy.NAME:
            if not self.tag:
                return False
            self.by, self.key = SweepBy.TAG, self.tag
        else:
            self.by, self.key = SweepBy.NAME, self.name
        self.top = 0
        return True

    def next_sort(self, table: ResultsTable) -> None:
        """Sort by the next column (after the last: back to submission order)."""
        names = list(table.names)
        if self.sort not in names:
            self.sort = names[0] if names else None
        else:
            i = names.index(self.sort) + 1
            self.sort = names[i] if i < len(names) else None
        self.desc = False

    def reverse(self) -> None:
        self.desc = not self.desc

    def scroll(self, delta: int, rows: int, page: int) -> None:
        """Move the first row shown, within the table."""
        self.top = max(0, min(max(0, rows - page), self.top + delta))
