"""Errors of the controller's commands and queries; each message says what to do instead."""

from __future__ import annotations

from collections.abc import Sequence

from dtask_common.models import FieldError


class NotFound(LookupError):
    """An unknown task or executor; the message says how to list the known ones."""


class Conflict(RuntimeError):
    """The command does not fit the current state; the message says what to do instead."""


class TooLarge(ValueError):
    """A request too large to serve in one call."""


class SlowWatcher(RuntimeError):
    """A watcher too slow to take its snapshot; it is dropped."""


class InvalidTasks(ValueError):
    """A rejected submission; `errors` lists every problem."""

    def __init__(self, errors: Sequence[FieldError], total: int):
        self.errors = list(errors)
        bad = len({e.index for e in self.errors})
        first = "; ".join(str(e) if len(str(e)) <= 300 else str(e)[:300] + "…" for e in self.errors[:5])
        more = f" (and {len(self.errors) - 5} more)" if len(self.errors) > 5 else ""
        super().__init__(
            f"{bad} of {total} tasks are invalid: {first}{more}; fix them and submit again (nothing was queued)"
        )
