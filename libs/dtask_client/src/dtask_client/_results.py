"""What `results()` selects and how: name prefixes, ids, a tag and parameters, merged into one list of tasks."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from dtask_common.ids import is_task_id
from dtask_common.models import Task


@dataclass(frozen=True, slots=True)
class Selection:
    """Tasks named with one of these prefixes, plus tasks of these ids (neither: every task), then filtered
    by tag and parameters on the controller."""

    prefixes: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()


def selection(names: str | Sequence[str] | None, ids: Iterable[str] | None) -> Selection:
    """A selection from names (a prefix or matrix base name, or a task id) and explicit ids."""
    given = [names] if isinstance(names, str) else list(names or ())
    wanted_ids = [str(i) for i in ids or ()]
    prefixes: list[str] = []
    for n in given:
        (wanted_ids if is_task_id(n) else prefixes).append(n)
    for i in wanted_ids:
        if not is_task_id(i):
            raise ValueError(f"{i!r} is not a task id (a decimal number such as 12)")
    return Selection(tuple(dict.fromkeys(prefixes)), tuple(dict.fromkeys(wanted_ids)))


def merged(groups: Iterable[Iterable[Task]]) -> list[Task]:
    """The tasks of every group once, in id order."""
    by_id: dict[str, Task] = {}
    for group in groups:
        for t in group:
            by_id.setdefault(t.id, t)
    return sorted(by_id.values(), key=lambda t: int(t.id))
