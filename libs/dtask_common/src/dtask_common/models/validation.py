"""Limits of a task spec and the errors validation reports."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dtask_common.models.specs import TaskSpec

MAX_NAME = 256
MAX_COMMAND_BYTES = 128 * 1024
MAX_PATH = 4096
MAX_ENV_ENTRIES = 1024
MAX_ENV_VALUE = 32 * 1024
MAX_LABEL = 256
MAX_TAGS = 64
MAX_DEPENDS = 1024
MAX_RETRIES = 100
#: Tasks one SubmitTasks call (so one task file, matrices expanded) may hold.
MAX_SUBMIT = 10_000
MAX_LOST_AFTER_S = 30 * 24 * 3600.0
PROGRESS_PARSERS = ("auto", "tqdm", "fraction", "regex", "none")
PROGRESS_GROUPS = ("label", "step", "total", "percent")
INT32_MAX = 2**31 - 1


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem with one field of one task of a submission."""

    field: str
    message: str
    index: int = 0
    task_name: str = ""

    def __str__(self) -> str:
        who = f"task {self.task_name!r}" if self.task_name else f"task #{self.index + 1}"
        return f"{who}: {self.field}: {self.message}"


class ValidationError(ValueError):
    """Raised when one or more task fields are invalid; lists every problem."""

    def __init__(self, errors: Iterable[FieldError]):
        self.errors: list[FieldError] = list(errors)
        super().__init__("; ".join(str(e) for e in self.errors) or "invalid")


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_pattern(pattern: str, bad: Any) -> None:
    if not pattern:
        bad("progress_pattern", "is required with progress = 'regex'")
        return
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        bad("progress_pattern", f"is not a valid regular expression: {exc}")
        return
    if not set(compiled.groupindex) & {"step", "percent"}:
        bad("progress_pattern", "needs a named group 'step' or 'percent', e.g. (?P<step>\\d+)")


def validate_batch(specs: Iterable[TaskSpec]) -> list[FieldError]:
    """Validate a submission: every spec, unique names, dependencies in order."""
    errs: list[FieldError] = []
    seen: dict[str, int] = {}
    specs = list(specs)
    for i, spec in enumerate(specs):
        name = spec.name if isinstance(spec.name, str) else ""
        for e in spec.errors():
            errs.append(FieldError(e.field, e.message, i, name))
        if name:
            if name in seen:
                errs.append(
                    FieldError(
                        "name", f"duplicates task #{seen[name] + 1}; names must be unique in a submission", i, name
                    )
                )
            else:
                seen[name] = i
    for i, spec in enumerate(specs):
        for dep in spec.depends_on:
            if dep == spec.name:
                errs.append(FieldError("depends_on", "a task cannot depend on itself", i, spec.name))
    return errs
