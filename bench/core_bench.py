"""Core benchmark: the controller core's CPU per task on the finish -> dispatch next -> publish path, in process.

A core on a real SQLite file with one executor of 1 slot and one watcher subscribed (so each event is built):
each step reports attempt 1 of the running task finished, which commits its end, dispatches the next task
in the same commit and publishes both events. No network, no runner: what the core itself costs per task.
The floor is the store's own writes for the same steps (finish_attempt, set_task, add_attempt in one
transaction per task) on another file, measured in the same run. Logging is at WARNING (not measured).

Run from the repository root: .venv/bin/python -m bench.core_bench [--tasks 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import tempfile
import time
from pathlib import Path

from dtask_common.config import Config
from dtask_common.models import AttemptResult, Capacity, TaskSpec, TaskState, WatchFilter
from dtask_controller import commands, queries, recovery, reports
from dtask_controller.core import ControllerCore
from dtask_controller.runner_messages import Hello
from dtask_controller.settings import Settings
from dtask_controller.store import SqliteStore


def specs(n: int) -> list[TaskSpec]:
    return [TaskSpec(name=f"t{i}", argv=("/bin/true",)) for i in range(n)]


async def through_core(path: Path, n: int) -> float:
    """CPU seconds per task of the core's finish -> dispatch -> publish."""
    core = ControllerCore(SqliteStore(path), Settings.from_config(Config()))
    recovery.restore(core)
    session = reports.connected(core, Hello("r1", capacity=Capacity(slots=1), protocol_version=1))
    watcher = queries.subscribe(core, WatchFilter())
    ids = commands.submit(core, specs(n))
    core.dispatch()
    t0 = time.process_time()
    for tid in ids:
        with core.change():
            reports.finished(core, "r1", AttemptResult(tid, 1, TaskState.SUCCEEDED, exit_code=0))
        while not session.outbox.empty():
            session.outbox.get_nowait()
        watcher.queue.clear()
    took = time.process_time() - t0
    core.store.close()
    return took / n


def store_floor(path: Path, n: int) -> float:
    """CPU seconds per task of the store's writes alone for the same steps."""
    store = SqliteStore(path)
    ids = store.add_tasks(specs(n), [()] * n, time.time())
    store.add_attempt(ids[0], 1, "r1", (), time.time())
    t0 = time.process_time()
    for i, tid in enumerate(ids):
        now = time.time()
        with store.transaction():
            store.finish_attempt(tid, 1, TaskState.SUCCEEDED, finished_at=now, exit_code=0)
            store.set_task(tid, TaskState.SUCCEEDED, error="", result=None)
            if i + 1 < n:
                store.add_attempt(ids[i + 1], 1, "r1", (), now)
    took = time.process_time() - t0
    store.close()
    return took / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tasks", type=int, default=3000)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as d:
        core = asyncio.run(through_core(Path(d) / "core.db", args.tasks))
        floor = store_floor(Path(d) / "floor.db", args.tasks)
    print(
        f"{args.tasks} tasks through the core (finish, dispatch next, publish to a watcher): "
        f"{core * 1e6:.0f} us CPU per task"
    )
    print(
        f"the store's writes alone for the same steps (floor): {floor * 1e6:.0f} us per task; ratio {core / floor:.1f}x"
    )


if __name__ == "__main__":
    main()
