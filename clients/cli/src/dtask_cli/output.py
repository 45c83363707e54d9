"""Human output of the CLI and `dtask shell`: aligned tables, state colours, times, and JSON shapes.

Every string from the controller goes through safetext.shown before it is measured or printed."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import click
from dtask_common.export import attempt_usage_to_dict, iso, task_to_dict
from dtask_common.humanize import attempt_usage, clock, duration, percent
from dtask_common.models import (
    Capacity,
    ExecutorInfo,
    ExecutorState,
    ExecutorUsage,
    Progress,
    QueueStatus,
    Task,
    TaskState,
    UsageSample,
)
from dtask_common.models.params import shown as param_text
from dtask_common.safetext import cells, cut, shown

STATE_COLOURS: dict[str, str] = {
    TaskState.PENDING: "yellow",
    TaskState.RUNNING: "cyan",
    TaskState.SUCCEEDED: "green",
    TaskState.FAILED: "red",
    TaskState.CANCELLED: "magenta",
    TaskState.LOST: "red",
    ExecutorState.IDLE: "green",
    ExecutorState.BUSY: "cyan",
    ExecutorState.DRAINING: "yellow",
    ExecutorState.DEAD: "red",
    ExecutorState.GONE: "bright_black",
}


# ---- cells ----


def bar(fraction: float | None, width: int = 10) -> str:
    if fraction is None:
        return " " * width
    full = round(max(0.0, min(1.0, fraction)) * width)
    return "█" * full + "·" * (width - full)


def progress_text(p: Progress | None) -> str:
    """e.g. `████······ 45% 9/20 Epoch 1 eta 12s`."""
    if p is None:
        return ""
    parts = [bar(p.fraction)]
    if p.fraction is not None:
        parts.append(f"{p.fraction * 100:3.0f}%")
    parts.append(f"{p.step}/{p.total}" if p.total else str(p.step))
    if p.label:
        parts.append(p.label)
    if p.eta_s is not None:
        parts.append(f"eta {duration(p.eta_s)}")
    if p.epoch and p.epochs:
        overall = p.overall
        parts.append(
            f"epoch {p.epoch}/{p.epochs}" + (f" ({overall * 100:.0f}% overall)" if overall is not None else "")
        )
    return " ".join(parts)


def stale_text(t: Task, now: float | None = None) -> str:
    """'stale 42s' while the task's executor is out of touch (its progress is that old), else ''."""
    if t.state is not TaskState.RUNNING or t.stale_since is None:
        return ""
    return f"stale {duration(max(0.0, (time.time() if now is None else now) - t.stale_since))}"


def task_progress(t: Task, now: float | None = None) -> str:
    if t.state is TaskState.RUNNING:
        if t.stale_since is not None:
            return f"{stale_text(t, now)} (executor {t.executor} out of touch)"
        return progress_text(t.progress) or "running"
    if t.state.finished and t.error:
        return _short(t.error, 60)
    if t.state is TaskState.PENDING and t.spec.depends_on:
        return "after " + ",".join(t.spec.depends_on)[:40]
    return ""


def _short(text: str, n: int) -> str:
    line = shown(text.strip().splitlines()[-1]) if text.strip() else ""
    return line if cells(line) <= n else cut(line, n - 1) + "…"


def _coloured(text: str, colour: str | None) -> str:
    return click.style(text, fg=colour) if colour else text


def state_cell(state: str) -> str:
    return click.style(state, fg=STATE_COLOURS.get(state))


# ---- tables ----


def table(
    headers: Sequence[str], rows: Iterable[Sequence[str]], colour_cols: Sequence[int] = (), right: Sequence[int] = ()
) -> str:
    """Columns aligned on their plain text; cells in colour_cols coloured by state name."""
    rows = [[shown(str(c)) for c in r] for r in rows]
    widths = [len(h) for h in headers]
    for r in rows:
        for i, c in enumerate(r):
            widths[i] = max(widths[i], cells(c))  # terminal cells: a wide character takes two
    out = [click.style("  ".join(h.ljust(widths[i]) for i, h in enumerate(headers)).rstrip(), bold=True)]
    for r in rows:
        line = []
        for i, c in enumerate(r):
            pad = " " * (widths[i] - cells(c))
            padded = pad + c if i in right else c + pad
            line.append(click.style(padded, fg=STATE_COLOURS.get(c)) if i in colour_cols else padded)
        out.append("  ".join(line).rstrip())
    return "\n".join(out)


def tasks_table(tasks: Sequence[Task], now: float | None = None) -> str:
    rows = []
    for t in tasks:
        tries = f"{len(t.attempts)}" if t.attempts else "0"
        rows.append(
            [
                t.id,
                t.name,
                t.state.value,
                tries,
                t.executor or "-",
                clock(t.submitted_at, now),
                duration(t.duration_s) if t.state.finished else _running_for(t, now),
                task_progress(t, now),
            ]
        )
    return table(
        ["ID", "NAME", "STATE", "TRIES", "EXECUTOR", "SUBMITTED", "TIME", "PROGRESS / ERROR"],
        rows,
        colour_cols=(2,),
        right=(0, 3),
    )


def _running_for(t: Task, now: float | None) -> str:
    if t.state is TaskState.RUNNING and t.dispatched_at is not None:
        return duration((time.time() if now is None else now) - t.dispatched_at)
    return "-"


def capacity_text(c: Capacity) -> str:
    parts = [f"{c.slots} slot{'s' if c.slots != 1 else ''}"]
    if c.cpus:
        parts.append(f"{c.cpus:g} cpu")
    if c.memory_mb:
        parts.append(f"{c.memory_mb} MiB")
    if c.gpus:
        parts.append("gpu " + ",".join(str(g) for g in c.gpus))
    return ", ".join(parts)


def executors_table(executors: Sequence[ExecutorInfo]) -> str:
    rows = []
    for e in executors:
        u = e.last_usage
        rows.append(
            [
                e.name,
                e.state.value,
                f"{len(e.running_task_ids)}/{e.capacity.slots}",
                ",".join(str(g) for g in e.capacity.gpus) or "-",
                percent(u.cpu_percent if u else None),
                percent(u.ram_percent if u else None),
                percent(u.gpu_percent if u else None),
                ",".join(e.running_task_ids) or "-",
                ",".join(f"{k}={v}" for k, v in sorted(e.labels.items())) or "-",
                e.version or "-",
                e.containment.partition(":")[0] or "-",
            ]
        )
    out = table(
        ["NAME", "STATE", "BUSY", "GPUS", "CPU", "RAM", "GPU", "RUNNING", "LABELS", "VERSION", "CONTAINMENT"],
        rows,
        colour_cols=(1,),
        right=(2, 4, 5, 6),
    )
    # Why a runner has no cgroups (its tasks' leftovers are found by their environment only).
    notes = [f"{e.name}: {e.containment}" for e in executors if e.containment.startswith("sweep:")]
    return "\n".join([out, *notes])


def usage_state(u: ExecutorUsage, states: Mapping[str, str] | None = None) -> str:
    """The executor's state in `dtask executors`' words (idle, busy, draining, dead, gone); from the usage's
    own dead flag when the executor is not in states."""
    if states and u.executor in states:
        return states[u.executor]
    return ExecutorState.DEAD.value if u.dead else "-"


def usage_table(usage: Sequence[ExecutorUsage], states: Mapping[str, str] | None = None) -> str:
    """states: executor name -> its state word, as `dtask executors` says it."""
    rows = []
    for u in usage:
        s = u.latest
        rows.append(
            [
                u.executor,
                usage_state(u, states),
                percent(s.cpu_percent if s else None),
                percent(s.ram_percent if s else None),
                percent(s.swap_percent if s else None),
                percent(s.gpu_percent if s else None),
                percent(s.vmem_percent if s else None),
                " ".join(f"{x:.1f}" for x in s.load_avg) if s and s.load_avg else "-",
                " ".join(f"{c:.0f}" for c in s.per_cpu_percent) if s else "-",
            ]
        )
    return table(
        ["EXECUTOR", "STATE", "CPU", "RAM", "SWAP", "GPU", "VMEM", "LOAD", "PER-CORE %"],
        rows,
        colour_cols=(1,),
        right=(2, 3, 4, 5, 6),
    )


def queue_text(q: QueueStatus) -> str:
    state = click.style("paused", fg="yellow") if q.paused else click.style("dispatching", fg="green")
    return (
        f"queue {state}: {q.pending} pending, {q.running} running, {q.succeeded} succeeded, "
        f"{q.failed} failed, {q.cancelled} cancelled, {q.lost} lost"
    )


def task_detail(t: Task, now: float | None = None) -> str:
    """Everything about one task as labelled lines, then its attempts."""
    s = t.spec
    lines = [
        ("id", t.id),
        ("name", t.name),
        ("state", t.state.value),
        ("command", s.command_text + ("" if s.argv else "   (sh -c)")),
    ]
    if s.cwd:
        lines.append(("cwd", s.cwd))
    if s.venv:
        lines.append(("venv", s.venv))
    if s.conda:
        lines.append(("conda", s.conda))
    if s.env:
        lines.append(("env", " ".join(f"{k}={v}" for k, v in s.env.items())))
    r = s.resources
    if r.cpus or r.memory_mb or r.gpus:
        lines.append(("resources", f"cpus={r.cpus:g} memory_mb={r.memory_mb} gpus={r.gpus}"))
    if s.labels:
        lines.append(("labels", " ".join(f"{k}={v}" for k, v in s.labels.items())))
    if s.tags:
        lines.append(("tags", ", ".join(s.tags)))
    if s.params:
        lines.append(("params", " ".join(f"{k}={param_text(v)}" for k, v in s.params.items())))
    if s.depends_on:
        lines.append(("after", ", ".join(s.depends_on)))
    lines += [
        ("priority", str(s.priority)),
        ("attempts", f"{len(t.attempts)} (max_retries {s.max_retries})"),
        ("timeout", duration(s.timeout_s) if s.timeout_s else "none"),
        ("executor", t.executor or "-"),
        ("submitted", clock(t.submitted_at, now)),
        ("dispatched", clock(t.dispatched_at, now)),
        ("finished", clock(t.finished_at, now)),
        ("duration", duration(t.duration_s) if t.state.finished else _running_for(t, now)),
    ]
    if t.progress is not None and not t.state.finished:
        lines.append(("progress", progress_text(t.progress)))
    if (u := t.usage) is not None and t.state is TaskState.RUNNING:
        lines.append(("usage", attempt_usage(u.cpu_percent, u.rss_bytes, u.gpu_memory_bytes, u.cpu_time_s)))
    if stale := stale_text(t, now):
        lines.append(
            (
                "stale",
                f"{stale}: executor {t.executor} is out of touch since {clock(t.stale_since, now)}; "
                "the attempt may still run there",
            )
        )
    if t.result:
        lines.append(("result", "  ".join(f"{k}={v}" for k, v in t.result.items())))
    if t.error:  # a pending task's error is why it waits
        lines.append(
            ("waiting" if t.state is TaskState.PENDING else "error", t.error.strip().removeprefix("waiting: "))
        )
    width = max(len(k) for k, _ in lines)
    colours = {"state": STATE_COLOURS.get(t.state), "error": "red"}
    out = [f"{click.style(k.ljust(width), bold=True)}  {_coloured(shown(v), colours.get(k))}" for k, v in lines]
    if t.attempts:
        rows = [
            [
                str(a.number),
                a.executor or "-",
                a.state.value,
                clock(a.dispatched_at, now),
                duration(
                    a.duration_s or (a.finished_at - a.dispatched_at if a.finished_at and a.dispatched_at else None)
                ),
                "-" if a.exit_code is None else str(a.exit_code),
                _short(a.error, 60),
            ]
            for a in t.attempts
        ]
        out += [
            "",
            table(
                ["#", "EXECUTOR", "STATE", "DISPATCHED", "TIME", "EXIT", "ERROR"], rows, colour_cols=(2,), right=(0, 5)
            ),
        ]
    return "\n".join(out)


# ---- JSON shapes (stable; documented in the README) ----


def usage_sample_json(s: UsageSample | None) -> dict[str, Any] | None:
    if s is None:
        return None
    return {
        "at": iso(s.at),
        "cpu_percent": s.cpu_percent,
        "per_cpu_percent": list(s.per_cpu_percent),
        "ram_percent": s.ram_percent,
        "ram_used_bytes": s.ram_used_bytes,
        "ram_total_bytes": s.ram_total_bytes,
        "swap_percent": s.swap_percent,
        "load_avg": list(s.load_avg),
        "gpus": [
            {
                "index": g.index,
                "name": g.name,
                "util_percent": g.util_percent,
                "memory_percent": g.memory_percent,
                "memory_total_bytes": g.memory_total_bytes,
            }
            for g in s.gpus
        ],
        "attempts": [{"task_id": a.task_id, **(attempt_usage_to_dict(a) or {})} for a in s.attempts],
    }


def executor_json(e: ExecutorInfo) -> dict[str, Any]:
    return {
        "name": e.name,
        "state": e.state.value,
        "capacity": {
            "slots": e.capacity.slots,
            "cpus": e.capacity.cpus,
            "memory_mb": e.capacity.memory_mb,
            "gpus": list(e.capacity.gpus),
        },
        "labels": dict(e.labels),
        "address": e.address,
        "version": e.version,
        "protocol_version": e.protocol_version,
        "connected_since": iso(e.connected_since),
        "last_seen": iso(e.last_seen),
        "running_task_ids": list(e.running_task_ids),
        "last_usage": usage_sample_json(e.last_usage),
        "containment": e.containment,
    }


def usage_json(u: ExecutorUsage, history: bool = True, states: Mapping[str, str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "executor": u.executor,
        "state": usage_state(u, states),
        "dead": u.dead,
        "latest": usage_sample_json(u.latest),
    }
    if history:
        out["history"] = [usage_sample_json(s) for s in u.history]
    return out


def queue_json(q: QueueStatus) -> dict[str, Any]:
    return {
        "paused": q.paused,
        "finished": q.finished,
        "pending": q.pending,
        "running": q.running,
        "succeeded": q.succeeded,
        "failed": q.failed,
        "cancelled": q.cancelled,
        "lost": q.lost,
    }


def task_json(t: Task) -> dict[str, Any]:
    return task_to_dict(t)
