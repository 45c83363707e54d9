"""dtask-tui speed: apply 1,000 Watch events to a 10,000-task, 50-executor state, then redraw.

Run: .venv/bin/python -m bench.tui_bench   (prints figures; --json for a machine-readable line)
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time

from dtask_common.events import Snapshot, TaskEventKind, WatchEvent
from dtask_common.models import ExecutorInfo, ExecutorUsage, Identity, Progress, QueueStatus, Task, TaskState
from dtask_tui.app import TuiApp
from dtask_tui.state import Layout, Tab, TuiState
from dtask_tui.status import ConnState

from tests.unit.tui.fakes import NOW, FakeController, executor, progress_event, sample, task, task_event, usage_event

N_TASKS = 10_000
N_EXECUTORS = 50
N_EVENTS = 1_000
GPUS = 8


def node(e: int) -> str:
    return f"node-{e:02d}"


def cluster(rng: random.Random) -> tuple[list[Task], list[ExecutorInfo], list[ExecutorUsage]]:
    """50 busy 8-GPU executors (every fifth with 128 cores) with a minute of usage; 10,000 tasks."""
    execs = []
    usage = []
    for e in range(N_EXECUTORS):
        cores = 128 if e % 5 == 0 else 32
        ex = executor(node(e), cores=cores, gpus=GPUS)
        execs.append(ex)
        usage.append(
            ExecutorUsage(
                ex.name,
                False,
                ex.last_usage,
                tuple(sample(NOW - 60 + k, cores, rng.uniform(0, 100), GPUS) for k in range(60)),
            )
        )
    tasks = []
    for i in range(N_TASKS):
        state = TaskState.RUNNING if i < 400 else (TaskState.SUCCEEDED if i < 6000 else TaskState.PENDING)
        progress = Progress("epoch", rng.randrange(100), 100) if state is TaskState.RUNNING else None
        tasks.append(
            task(
                i,
                state,
                name=f"train[lr={i % 7},seed={i}]",
                executor=node(i % N_EXECUTORS),
                progress=progress,
                spacing=0.01,
            )
        )
    return tasks, execs, usage


def events(rng: random.Random, tasks: list[Task], execs: list[ExecutorInfo]) -> list[WatchEvent]:
    """A realistic mix: mostly progress, usage every second per executor, some state changes."""
    out: list[WatchEvent] = []
    running = [t for t in tasks if t.state is TaskState.RUNNING]
    pending = [i for i, t in enumerate(tasks) if t.state is TaskState.PENDING]
    for seq in range(N_EVENTS):
        r = rng.random()
        if r < 0.7:
            out.append(progress_event(seq + 2, rng.choice(running).id, rng.randrange(100)))
        elif r < 0.9:
            ex = rng.choice(execs)
            cores = len(ex.last_usage.per_cpu_percent) if ex.last_usage else 32
            out.append(usage_event(seq + 2, ex.name, NOW + seq, cpu=rng.uniform(0, 100), cores=cores))
        else:
            i = pending.pop()
            moved = task(i, TaskState.RUNNING, name=tasks[i].name, executor=rng.choice(execs).name, spacing=0.01)
            out.append(task_event(seq + 2, moved, TaskEventKind.DISPATCHED))
    return out


def run_once(seed: int, tab: Tab, layout: Layout, size: tuple[int, int], sort: str) -> dict[str, float]:
    rng = random.Random(seed)
    tasks, execs, usage = cluster(rng)
    state = TuiState("127.0.0.1:50051", clock=lambda: NOW, row_cap=2 * N_TASKS)  # every task held
    t0 = time.perf_counter()
    state.apply(WatchEvent(1, NOW, Snapshot(tasks, execs, usage, QueueStatus(), last=True)))
    snapshot_s = time.perf_counter() - t0
    state.set_connection(ConnState.CONNECTED, identity=Identity("operator", "bench"))
    state.set_sort(sort)
    state.switch_tab(tab)
    state.set_layout(layout)
    app = TuiApp(FakeController(), state)  # the benchmark feeds events directly; no call is made
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
    return {
        "snapshot_s": snapshot_s,
        "apply_s": apply_s,
        "redraw_s": redraw_s,
        "total_s": apply_s + redraw_s,
        "idle_redraw_s": idle_redraw_s,
    }


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
            print(
                f"{label}: apply {N_EVENTS} events {med['apply_s'] * 1000:.1f} ms + redraw "
                f"{med['redraw_s'] * 1000:.1f} ms = {med['total_s'] * 1000:.1f} ms "
                f"(snapshot of {N_TASKS} tasks/{N_EXECUTORS} executors {med['snapshot_s'] * 1000:.0f} ms, "
                f"idle redraw {med['idle_redraw_s'] * 1000:.1f} ms; median of {args.repeat})"
            )
    if args.json:
        print(json.dumps({k: {m: round(v * 1000, 2) for m, v in r.items()} for k, r in results.items()}))


if __name__ == "__main__":
    main()
