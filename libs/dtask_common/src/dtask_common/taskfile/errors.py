"""What a task file may hold, and how its problems are worded (file, task, field)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from dtask_common.models import FieldError, ParamValue
from dtask_common.suggest import closest, did_you_mean

#: Keys a `[[task]]` table (and, except name/matrix/depends_on, `[defaults]`) may hold.
TASK_KEYS = (
    "name",
    "command",
    "cwd",
    "env",
    "resources",
    "labels",
    "priority",
    "max_retries",
    "retries",
    "timeout_s",
    "lost_after_s",
    "depends_on",
    "tags",
    "progress",
    "progress_pattern",
    "result_marker",
    "matrix",
    "venv",
    "conda",
)
DEFAULT_KEYS = tuple(k for k in TASK_KEYS if k not in ("name", "matrix", "depends_on"))
RESOURCE_KEYS = ("cpus", "memory_mb", "gpus")
TOP_KEYS = ("task", "defaults")
#: Placeholder replaced by the absolute directory of the task file.
TASKFILE_DIR = "taskfile_dir"


class TaskFileError(ValueError):
    """A task file that cannot be queued; the message lists every problem, one per line."""

    def __init__(self, source: str, problems: Iterable[str]):
        self.source = source
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


@dataclass
class Entry:
    """One expanded task before conversion: where it came from and its raw values."""

    index: int  # 1-based position of the [[task]] table in the file
    base: str  # name before matrix expansion
    name: str
    values: dict[str, Any]
    params: dict[str, ParamValue] = field(default_factory=dict)  # the matrix combination, typed


def unknown_key(key: str, allowed: tuple[str, ...]) -> str:
    """`unknown key 'progrss' (did you mean 'progress'?)`, or the allowed keys when nothing is close."""
    hint = did_you_mean(key, allowed)
    resource = closest(key, RESOURCE_KEYS)
    if not hint and resource is not None:
        return f"unknown key {key!r} (did you mean resources.{resource}? e.g. resources = {{ {resource} = 1 }})"
    return f"unknown key {key!r}{hint}" if hint else f"unknown key {key!r}; allowed: {', '.join(allowed)}"


def task_prefix(source: str, entry: Entry | None = None, *, index: int = 0, name: str = "") -> str:
    if entry is not None:
        index, name = entry.index, entry.name
    return f"{source}: task {name!r} (#{index}): " if name else f"{source}: task #{index}: "


def describe(errors: Iterable[FieldError], source: str = "") -> list[str]:
    """Field errors (e.g. from the controller) as task-file style lines."""
    prefix = f"{source}: " if source else ""
    return [
        prefix
        + (f"task {e.task_name!r} (#{e.index + 1}): " if e.task_name else f"task #{e.index + 1}: ")
        + f"{e.field}: {e.message}"
        for e in errors
    ]


def once_per_entry(source: str, found: Iterable[tuple[Entry, str]], sizes: dict[int, int]) -> list[str]:
    """Problems of expanded tasks ("field: message" each), a problem shared by several expansions of one
    [[task]] table said once for the table (sizes: expansions per table index), in order of first sight."""
    groups: dict[tuple[int, str], list[Entry]] = {}
    for entry, message in found:
        groups.setdefault((entry.index, message), []).append(entry)
    out = []
    for (index, message), entries in groups.items():
        if len(entries) == 1:
            out.append(task_prefix(source, entries[0]) + message)
            continue
        total = sizes.get(index, len(entries))
        which = f"all {total} of its" if len(entries) >= total else f"{len(entries)} of its {total}"
        out.append(f"{source}: task {entries[0].base!r} (#{index}, {which} matrix tasks): {message}")
    return out
