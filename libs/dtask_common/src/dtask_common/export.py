"""The JSON export of tasks shared by `dtask export` and the TUI: one stable, documented shape."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from dtask_common.models import Attempt, AttemptUsage, MetricPoint, Progress, Resources, Task, TaskSpec
from dtask_common.models.metrics import by_name
from dtask_common.safetext import json_text


def iso(t: float | None) -> str | None:
    """Epoch seconds as ISO 8601 UTC with milliseconds ("2025-01-31T12:00:00.000Z"), None stays None."""
    if t is None:
        return None
    try:
        return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    except (OverflowError, ValueError, OSError):  # not a time a calendar can show (inf, nan, year 10000+)
        return None


def spec_to_dict(s: TaskSpec) -> dict[str, Any]:
    """A TaskSpec as JSON-ready values; `command` is the display form, argv/shell the exact one."""
    return {
        "name": s.name,
        "command": s.command_text,
        "argv": list(s.argv),
        "shell": s.shell,
        "cwd": s.cwd,
        "env": dict(s.env),
        "resources": resources_to_dict(s.resources),
        "labels": dict(s.labels),
        "priority": s.priority,
        "max_retries": s.max_retries,
        "timeout_s": s.timeout_s,
        "lost_after_s": s.lost_after_s,
        "depends_on": list(s.depends_on),
        "tags": list(s.tags),
        "progress": s.progress,
        "progress_pattern": s.progress_pattern,
        "result_marker": s.result_marker,
        "params": dict(s.params),
        "venv": s.venv,
        "conda": s.conda,
    }


def resources_to_dict(r: Resources) -> dict[str, Any]:
    return {"cpus": r.cpus, "memory_mb": r.memory_mb, "gpus": r.gpus}


def progress_to_dict(p: Progress | None) -> dict[str, Any] | None:
    if p is None:
        return None
    return {
        "label": p.label,
        "step": p.step,
        "total": p.total,
        "percent": p.percent,
        "fraction": p.fraction,
        "rate": p.rate,
        "elapsed_s": p.elapsed_s,
        "eta_s": p.eta_s,
        "updated_at": iso(p.updated_at),
        "epoch": p.epoch,
        "epochs": p.epochs,
        "overall": p.overall,
    }


def attempt_to_dict(a: Attempt) -> dict[str, Any]:
    return {
        "number": a.number,
        "executor": a.executor,
        "gpu_ids": list(a.gpu_ids),
        "state": a.state.value,
        "dispatched_at": iso(a.dispatched_at),
        "finished_at": iso(a.finished_at),
        "duration_s": a.duration_s
        or (a.finished_at - a.dispatched_at if a.finished_at is not None and a.dispatched_at is not None else None),
        "exit_code": a.exit_code,
        "signal": a.signal,
        "error": a.error,
        "result": a.result,
        "peak_rss_bytes": a.peak_rss_bytes,
        "cpu_time_s": a.cpu_time_s,
        "metrics": metrics_to_dict(a.metrics),
    }


def metrics_to_dict(points: Iterable[MetricPoint]) -> dict[str, list[list[float | int]]]:
    """An attempt's live metrics: {name: [[unix seconds, value], ...]} (ints stay ints)."""
    return {name: [[p.at, p.value] for p in series] for name, series in by_name(points).items()}


def task_to_dict(t: Task) -> dict[str, Any]:
    """One task: spec, state, attempts, progress, result and timestamps (ISO 8601 UTC)."""
    return {
        "id": t.id,
        "name": t.name,
        "params": dict(t.spec.params),
        "state": t.state.value,
        "spec": spec_to_dict(t.spec),
        "submitted_at": iso(t.submitted_at),
        "dispatched_at": iso(t.dispatched_at),
        "finished_at": iso(t.finished_at),
        "duration_s": t.duration_s,
        "executor": t.executor,
        "attempts": [attempt_to_dict(a) for a in t.attempts],
        "progress": progress_to_dict(t.progress),
        "result": t.result,
        "error": t.error,
        "stale_since": iso(t.stale_since),
        "usage": attempt_usage_to_dict(t.usage),
    }


def attempt_usage_to_dict(u: AttemptUsage | None) -> dict[str, Any] | None:
    """A running attempt's latest usage: {attempt, cpu_percent, rss_bytes, gpu_memory_bytes, cpu_time_s}."""
    if u is None:
        return None
    return {
        "attempt": u.attempt,
        "cpu_percent": u.cpu_percent,
        "rss_bytes": u.rss_bytes,
        "gpu_memory_bytes": u.gpu_memory_bytes,
        "cpu_time_s": u.cpu_time_s,
    }


def export_tasks(tasks: Iterable[Task], controller: str = "", *, now: float | None = None) -> dict[str, Any]:
    """{"exported_at", "controller", "tasks": [...]} for every given task, in the given order."""
    return {
        "exported_at": iso(time.time() if now is None else now),
        "controller": controller,
        "tasks": [task_to_dict(t) for t in tasks],
    }


def to_json(data: Any, *, indent: int | None = 2) -> str:
    """JSON text as dtask writes it (UTF-8, keys in the documented order, a non-finite number as null;
    DEL, C1 and bidi controls as \\u escapes, so that the text is safe on a terminal and decodes to the
    same data)."""
    return json_text(
        json.dumps(finite_only(data), indent=indent, ensure_ascii=False, default=_default, allow_nan=False)
    )


def finite_only(data: Any) -> Any:
    """data with every inf or nan replaced by None: JSON has no such numbers (Python would write Infinity)."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: finite_only(v) for k, v in data.items()}
    if isinstance(data, (list, tuple, set, frozenset)):
        return [finite_only(v) for v in data]
    return data


def _default(obj: Any) -> Any:
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if isinstance(obj, bytes):
        return obj.decode("utf-8", "replace")
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")


def suggested_name(now: float | None = None) -> str:
    """A time-stamped file name for an export, e.g. dtask-tasks-20250131-120000.json."""
    return time.strftime("dtask-tasks-%Y%m%d-%H%M%S.json", time.localtime(time.time() if now is None else now))
