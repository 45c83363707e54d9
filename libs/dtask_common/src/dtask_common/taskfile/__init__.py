"""Task files: TOML `[[task]]` tables with `[task.matrix]` sweeps, parsed into validated TaskSpecs."""

from dtask_common.taskfile.errors import (
    DEFAULT_KEYS,
    RESOURCE_KEYS,
    TASK_KEYS,
    TASKFILE_DIR,
    TOP_KEYS,
    TaskFileError,
    describe,
)
from dtask_common.taskfile.loader import load, parse

__all__ = [
    "DEFAULT_KEYS",
    "RESOURCE_KEYS",
    "TASKFILE_DIR",
    "TASK_KEYS",
    "TOP_KEYS",
    "TaskFileError",
    "describe",
    "load",
    "parse",
]
