"""The runner's own CPU per task: N /bin/true attempts through the runner's core (launcher, containment,
watchdog, journal, output pumps, the usage sampler; no controller, no gRPC), `slots` at a time, beside
`xargs -P slots` on the same machine in the same run.

The runner's CPU is this process's (every thread) plus its watchdog's; the tasks' own CPU is not in it.

Run from the repository root: .venv/bin/python -m bench.runner_cpu_bench [--tasks 2000] [--slots 2]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import subprocess
import tempfile
import time
from pathlib import Path

import psutil
from dtask_common.config import load
from dtask_common.models import AttemptResult, OutputChunk, Progress, TaskSpec, TaskState, UsageSample


def xargs_floor(n: int, parallel: int) -> float:
    t0 = time.perf_counter()
    subprocess.run(f"seq {n} | xargs -P {parallel} -n 1 /bin/true", shell=True, check=True)
    return time.perf_counter() - t0


def own_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class AckingUplink:
    """An uplink that acknowledges every result at once (as a controller on the same machine would)."""

    connected = True

    def __init__(self) -> None:
        self.runner: object = None
        self.finished_count = 0
        self.bad = 0
        self.all_done = asyncio.Event()
        self.target = 0

    def progress(self, task_id: str, attempt: int, progress: Progress) -> None:
        pass

    def usage(self, sample: UsageSample) -> None:
        pass

    def drain(self, draining: bool) -> None:
        pass

    async def output(self, chunk: OutputChunk) -> bool:
        return True

    def finished(self, result: AttemptResult) -> None:
        self.finished_count += 1
        if result.state is not TaskState.SUCCEEDED:
            self.bad += 1
        self.runner.on_ack(result.task_id, result.attempt)  # type: ignore[attr-defined]
        if self.finished_count >= self.target:
            self.all_done.set()


async def run_tasks(home: Path, n: int, slots: int, name: str) -> tuple[float, float, float, int]:
    """(wall s, the runner's CPU s, its watchdog's CPU s, failed attempts) of n /bin/true attempts."""
    from dtask_runner.attempt_request import AttemptRequest
    from dtask_runner.runner import Runner

    cfg = load(overrides={"home": str(home), "runner.name": name, "runner.slots": slots, "runner.gpus": "none"})
    runner = Runner(cfg)
    uplink = AckingUplink()
    uplink.runner = runner
    runner.uplink = uplink  # type: ignore[assignment]
    usage = asyncio.get_running_loop().create_task(runner.usage_loop())
    spec = TaskSpec(argv=("/bin/true",))
    watchdog = runner.launcher.watchdog
    wd = psutil.Process(watchdog.pid) if watchdog is not None else None
    try:
        # warm up
        uplink.target = 10
        for i in range(10):
            while len(runner.launcher.running) >= slots:
                await asyncio.sleep(0)
                await asyncio.sleep(0.001)
            runner.on_assign(AttemptRequest(f"w{i}", 1, spec))
        await uplink.all_done.wait()
        uplink.all_done.clear()
        uplink.finished_count = 0
        uplink.target = n
        wd0 = sum(wd.cpu_times()[:2]) if wd else 0.0
        cpu0, t0 = own_cpu(), time.perf_counter()
        next_id = 0
        room = asyncio.Event()

        def assign() -> None:
            nonlocal next_id
            while next_id < n and len(runner._attempts) < slots:
                runner.on_assign(AttemptRequest(f"t{next_id}", 1, spec))
                next_id += 1

        orig = uplink.finished

        def finished(result: AttemptResult) -> None:
            orig(result)
            room.set()

        uplink.finished = finished  # type: ignore[method-assign]
        assign()
        while not uplink.all_done.is_set():
            await room.wait()
            room.clear()
            await asyncio.sleep(0)  # the finisher drops the attempt after it reports
            assign()
        wall = time.perf_counter() - t0
        cpu = own_cpu() - cpu0
        wdcpu = (sum(wd.cpu_times()[:2]) - wd0) if wd else 0.0
        return wall, cpu, wdcpu, uplink.bad
    finally:
        usage.cancel()
        await runner.close()
        runner.journal.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tasks", type=int, default=2000)
    ap.add_argument("--slots", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        floor = xargs_floor(args.tasks, args.slots)
        wall, cpu, wdcpu, bad = asyncio.run(run_tasks(Path(d), args.tasks, args.slots, "cpu-bench"))
        floor2 = xargs_floor(args.tasks, args.slots)
    best = min(floor, floor2)
    n = args.tasks
    print(
        f"{n} /bin/true attempts through the runner's core, {args.slots} at a time: {wall:.2f} s "
        f"({n / wall:.0f} tasks/s){'; NOT OK: ' + str(bad) if bad else ''}"
    )
    print(
        f"  the runner's own CPU: {cpu * 1000 / n:.3f} ms per task (+ its watchdog {wdcpu * 1000 / n:.3f} ms); "
        f"{cpu:.2f} s in all"
    )
    print(
        f"seq {n} | xargs -P {args.slots} -n 1 /bin/true (floor, before/after): {floor:.2f} s / {floor2:.2f} s "
        f"({best * 1000 / n:.3f} ms per task); runner/xargs time ratio {wall / best:.1f}x, "
        f"runner CPU per task / xargs wall per task {cpu / best:.1f}x"
    )


if __name__ == "__main__":
    main()
