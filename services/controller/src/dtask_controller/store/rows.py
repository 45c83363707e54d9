"""Rows of the SQLite store to models and back: specs, results and progress as JSON, attempts, executors."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from dtask_common.models import (
    Attempt,
    Capacity,
    MetricPoint,
    ParamValue,
    Progress,
    Resources,
    Task,
    TaskSpec,
    TaskState,
)
from dtask_common.models.metrics import metric_value
from dtask_common.models.specs import set_fields

from dtask_controller.store.compact_json import compact
from dtask_controller.store.records import StoredExecutor

SPECS_KEPT = 4096  # parsed specs kept by their stored text (read for every Watch event of a task)
TASK_COLS = "id, spec, state, submitted_at, error, result, progress"
ATTEMPT_COLS = (
    "task_id, number, executor, gpu_ids, dispatched_at, finished_at, state, exit_code, signal, "
    "error, result, peak_rss_bytes, cpu_time_s, duration_s, metrics"
)
EXECUTOR_COLS = "name, last_seen, capacity, labels, address, version, drained"


def spec_to_json(spec: TaskSpec) -> str:
    """The spec as stored: its set fields, resources too when it asks for any (half the bytes of every field)."""
    d = set_fields(spec)
    for key in ("env", "labels", "params"):  # (JSON keeps a param's 1.0 a float and 1 an int)
        if key in d:
            d[key] = dict(d[key])
    r = spec.resources
    if r.cpus or r.memory_mb or r.gpus:  # (none asked for reads back as Resources(); a float costs the encoder)
        d["resources"] = {"cpus": r.cpus, "memory_mb": r.memory_mb, "gpus": r.gpus}
    return compact(d)


def param_key(value: ParamValue) -> str | int | float:
    """A parameter value as the task_params table holds it (numbers compare by value, text and booleans apart)."""
    if isinstance(value, bool):
        return "b:true" if value else "b:false"
    if isinstance(value, str):
        return "s:" + value
    return value


def spec_from_json(text: str) -> TaskSpec:
    d = json.loads(text)
    d["resources"] = Resources(**d.get("resources", {}))
    for key in ("argv", "depends_on", "tags"):
        d[key] = tuple(d.get(key, ()))
    return TaskSpec(**d)


def dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"), default=str)


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def progress_to_json(progress: Progress) -> str:
    return json.dumps(asdict(progress), separators=(",", ":"), default=str)


def capacity_to_json(capacity: Capacity) -> str:
    return json.dumps(asdict(capacity))


class SpecCache:
    """Specs parsed once per stored text while kept (a stored spec never changes; TaskSpec is frozen)."""

    def __init__(self, kept: int = SPECS_KEPT) -> None:
        self._kept = kept
        self._specs: dict[str, TaskSpec] = {}

    def parse(self, text: str) -> TaskSpec:
        spec = self._specs.get(text)
        if spec is None:
            spec = self._specs[text] = spec_from_json(text)
            if len(self._specs) > self._kept:
                del self._specs[next(iter(self._specs))]
        return spec


def task_from_row(row: Sequence[Any], specs: SpecCache) -> Task:
    """A task from the TASK_COLS of its row, without its attempts."""
    tid, spec, state, submitted, error, result, progress = row
    return Task(
        id=str(tid),
        spec=specs.parse(spec),
        state=TaskState(state),
        submitted_at=submitted,
        error=error,
        result=loads(result),
        progress=Progress(**json.loads(progress)) if progress else None,
    )


def attempt_from_row(row: Sequence[Any]) -> Attempt:
    """An attempt from the ATTEMPT_COLS of its row."""
    (tid, number, executor, gpus, dispatched, finished, state, exit_code, signal, error, result, rss, cpu, duration) = (
        row[:14]
    )
    metrics = row[14] if len(row) > 14 else None
    return Attempt(
        task_id=str(tid),
        number=number,
        executor=executor,
        gpu_ids=tuple(json.loads(gpus)),
        dispatched_at=dispatched,
        finished_at=finished,
        state=TaskState(state),
        exit_code=exit_code,
        signal=signal,
        error=error,
        result=loads(result),
        peak_rss_bytes=rss,
        cpu_time_s=cpu,
        duration_s=duration,
        metrics=metrics_from_json(metrics),
    )


def metrics_to_json(points: Sequence[MetricPoint]) -> str:
    """An attempt's metric points as stored: [[name, at, value], ...] (ints stay ints)."""
    return compact([[p.name, p.at, p.value] for p in points])


def metrics_from_json(text: str | None) -> tuple[MetricPoint, ...]:
    if not text:
        return ()
    try:
        rows = json.loads(text)
    except ValueError:
        return ()
    out = []
    for item in rows if isinstance(rows, list) else ():
        if isinstance(item, list) and len(item) == 3 and isinstance(item[0], str) and isinstance(item[1], (int, float)):
            value = metric_value(item[2])
            if value is not None:
                out.append(MetricPoint(item[0], float(item[1]), value))
    return tuple(out)


def executor_from_row(row: Sequence[Any]) -> StoredExecutor:
    """An executor from the EXECUTOR_COLS of its row."""
    name, seen, cap, labels, address, version, drained = row
    c = json.loads(cap)
    c["gpus"] = tuple(c.get("gpus", ()))
    return StoredExecutor(name, seen, Capacity(**c), json.loads(labels), address, version, bool(drained))
