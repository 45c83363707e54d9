"""dtask-tui speed: apply 1,000 Watch events to a 10,000-task, 50-executor state, then redraw.

Run: .venv/bin/python -m bench.tui_bench   (prints figures; --json for a machine-readable line)
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections.abc import AsyncIterator

from dtask_common.events import (
    ProgressEvent,
    Snapshot,
    TaskEvent,
    TaskEventKind,
    UsageEvent,
    WatchEvent,
)
from dtask_common.models import (
    Attempt,
    Capacity,
    ExecutorInfo,
    ExecutorState,
    ExecutorUsage,
    GpuUsage,
    Identity,
    Progress,
    QueueStatus,
    Task,
    TaskSpec,
    TaskState,
    UsageSample,
)
from dtask_tui.app import TuiApp
from dtask_tui.state import Layout, Tab, TuiState
from dtask_tui.status import ConnState

NOW = 1_780_000_000.0
N_TASKS = 10_000
N_EXECUTORS = 50
N_EVENTS = 1_000


def sample(at: float, cores: int, rng: random.Random) -> UsageSample:
    return UsageSample(at=at, cpu_percent=rng.uniform(0, 100),
                       per_cpu_percent=tuple(rng.uniform(0, 100) for _ in range(cores)),
                       ram_percent=rng.uniform(0, 100), swap_percent=rng.uniform(0, 5),
                       gpus=tuple(GpuUsage(i, "A100", rng.uniform(0, 100), rng.uniform(0, 100)) for i in range(8)))


def cluster(rng: random.Random) -> tuple[list[Task], list[ExecutorInfo], list[ExecutorUsage]]:
    execs = []
    usage = []
    for e in range(N_EXECUTORS):
        cores = 128 if e % 5 == 0 else 32
        ex = ExecutorInfo(f"node-{e:02d}", ExecutorState.BUSY, Capacity(8, cores, 512_000, tuple(range(8))),
                          connected_since=NOW - 3600, last_usage=sample(NOW, cores, rng))
        execs.append(ex)
        usage.append(ExecutorUsage(ex.name, False, ex.last_usage,
                                   tuple(sample(NOW - 60 + k, cores, rng) for k in range(60))))
    tasks = []
    for i in range(N_TASKS):
        state = TaskState.RUNNING if i < 400 else (TaskState.SUCCEEDED if i < 6000 else TaskState.PENDING)
        attempts = []
        progress = None
        if state is not TaskState.PENDING:
            a = Attempt(str(i), 1, executor=f"node-{i % N_EXECUTORS:02d}", dispatched_at=NOW - 500 + i * 0.01)
            if state is TaskState.SUCCEEDED:
                a.state, a.finished_at = state, NOW - 100
            attempts.append(a)
            progress = Progress("epoch", rng.randrange(100), 100) if state is TaskState.RUNNING else None
        tasks.append(Task(str(i), TaskSpec(name=f"train[lr={i % 7},seed={i}]", shell=f"python train.py {i}"),
                          state, NOW - 1000 + i * 0.01, attempts, progress))
    return tasks, execs, usage


def events(rng: random.Random, tasks: list[Task], execs: list[ExecutorInfo]) -> list[WatchEvent]:
    """A realistic mix: mostly progress, usage every second per executor, some state changes."""
    out: list[WatchEvent] = []
    running = [t for t in tasks if t.state is TaskState.RUNNING]
    pending = [t for t in tasks if t.state is TaskState.PENDING]
    for seq in range(N_EVENTS):
        r = rng.random()
        if r < 0.7:
            t = rng.choice(running)
            body: object = ProgressEvent(t.id, 1, Progress("epoch", rng.randrange(100), 100))
        elif r < 0.9:
            ex = rng.choice(execs)
            cores = len(ex.last_usage.per_cpu_percent) if ex.last_usage else 32
            body = UsageEvent(ex.name, sample(NOW + seq, cores, rng))
        else:
            t = pending.pop()
            moved = Task(t.id, t.spec, TaskState.RUNNING, t.submitted_at,
                         [Attempt(t.id, 1, executor=rng.choice(execs).name, dispatched_at=NOW)], None)
            body = TaskEvent(TaskEventKind.DISPATCHED, moved)
        out.append(WatchEvent(seq + 2, NOW, body))  # type: ignore[arg-type]
    return out


class NoClient:
    """The benchmark feeds events directly; nothing is called."""

    address = "127.0.0.1:50051"

    async def close(self) -> None:
        return None

    def watch(self) -> AsyncIterator[WatchEvent]:  # pragma: no cover - not used
        raise NotImplementedError


def run_once(seed: int, tab: Tab, layout: Layout, size: tuple[int, int], sort: str) -> dict[str, float]:
    rng = random.Random(seed)
    tasks, execs, usage = cluster(rng)
    state = TuiState("127.0.0.1:50051", clock=lambda: NOW)
    t0 = time.perf_counter()
    state.apply(WatchEvent(1, NOW, Snapshot(tasks, execs, usage, QueueStatus(), last=True)))
    snapshot_s = time.perf_counter() - t0
    state.set_connection(ConnState.CONNECTED, identity=Identity("operator", "bench"))
    state.set_sort(sort)
    state.switch_tab(tab)
    state.set_layout(layout)
    app = TuiApp(NoClient(), state)  # type: ignore[arg-type]
    app.render_text(size)
    batch = events(rng, tasks, execs)
    t0 = time.perf_counter()
    for ev in batch:
        state.apply(ev)
    apply_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    app.render_text(size)
    redraw_s = time.perf_counter() - t1
    t2 = time.perf_counter()
    app.render_text(size)
    idle_redraw_s = time.perf_counter() - t2
    return {"snapshot_s": snapshot_s, "apply_s": apply_s, "redraw_s": redraw_s,
            "total_s": apply_s + redraw_s, "idle_redraw_s": idle_redraw_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    cases = [
        ("tasks tab, 160x48 vertical, sort by id", Tab.TASKS, Layout.VERTICAL, (160, 48), "id"),
        ("tasks tab, 80x24 horizontal, sort by state", Tab.TASKS, Layout.HORIZONTAL, (80, 24), "state"),
        ("executors tab, 160x48 vertical", Tab.EXECUTORS, Layout.VERTICAL, (160, 48), "id"),
    ]
    results = {}
    for label, tab, layout, size, sort in cases:
        runs = [run_once(seed, tab, layout, size, sort) for seed in range(args.repeat)]
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        results[label] = med
        if not args.json:
            print(f"{label}: apply {N_EVENTS} events {med['apply_s'] * 1000:.1f} ms + redraw "
                  f"{med['redraw_s'] * 1000:.1f} ms = {med['total_s'] * 1000:.1f} ms "
                  f"(snapshot of {N_TASKS} tasks/{N_EXECUTORS} executors {med['snapshot_s'] * 1000:.0f} ms, "
                  f"idle redraw {med['idle_redraw_s'] * 1000:.1f} ms; median of {args.repeat})")
    if args.json:
        print(json.dumps({k: {m: round(v * 1000, 2) for m, v in r.items()} for k, r in results.items()}))


if __name__ == "__main__":
    main()
