"""An attempt the controller asked this runner to run, and the file-name stem of its log and result."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from dtask_common.models import TaskSpec


@dataclass(frozen=True, slots=True)
class AttemptRequest:
    """An attempt the controller asked this runner to run."""

    task_id: str
    attempt: int
    spec: TaskSpec
    gpu_ids: tuple[int, ...] = ()


def safe_stem(task_id: str, attempt: int) -> str:
    """A file-name stem for an attempt."""
    return f"{re.sub(r'[^A-Za-z0-9_.-]', '_', task_id)[:100]}.{attempt}"


def metrics_file_for(result_file: Path) -> Path:
    """The attempt's `$DTASK_METRICS_FILE`, beside its result file."""
    name = result_file.name.removesuffix(".result.json")
    return result_file.with_name(f"{name}.metrics.jsonl")
