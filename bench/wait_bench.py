"""Wait benchmark: the latency of one submit -> wait([id]) -> done of /bin/true on a controller whose store
already holds many tasks (one runner, 1 slot), beside the floor of running /bin/true inline.

The stored tasks are written straight into the store file before the controller starts (tests/stored_tasks:
succeeded tasks with one attempt each, about 1 s per 20,000), so they cost the controller nothing but
their rows. Each run submits one task, waits for it with Controller.wait([id]) and measures the whole
round trip; the floor is subprocess.run(['/bin/true']) in this process, measured in the same run.
The runner's launcher alone (its log, its cgroup and gate shell, no gRPC, no store) is timed beside, as a floor.
--unfiltered N also times N waits done the way they were before Watch filters (a Watch of every task,
read until the task is finished), to show what the filter saves. The controller's CPU per run is reported too
(psutil, user + system).

Run from the repository root: .venv/bin/python -m bench.wait_bench [--stored 100000] [--runs 300]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import psutil
from dtask.v1 import common_pb2 as cpb
from dtask.v1 import controller_pb2 as pb
from dtask.v1 import controller_pb2_grpc
from dtask_client import Controller
from dtask_common import events as ev
from dtask_common.models import TaskSpec, TaskState, WatchFilter

from tests.integration.client.cluster import start_runner
from tests.stored_tasks import fill_store
from tests.support import free_port_range, make_certs, start_dtask, sync_channel, tls

TRUE = TaskSpec(name="w", argv=("/bin/true",))


def pct(xs: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of xs, in the unit of xs."""
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s) + 0.5) - 1))]


def inline_floor(runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(["/bin/true"], check=True)
        out.append(1000 * (time.perf_counter() - t0))
    return out


def launcher_floor(runs: int, tmp: Path) -> list[float]:
    """ms per /bin/true attempt through the runner's launcher alone, in this process: its log, its cgroup (as the
    runner's containment = auto gives) and the gate's shell, no gRPC and no store."""
    import asyncio

    from dtask_runner.attempt_request import AttemptRequest
    from dtask_runner.containment import open_containment
    from dtask_runner.launcher import Launcher

    class Sink:
        def on_output(self, execution: object) -> None:
            pass

        def on_progress(self, execution: object, progress: object) -> None:
            pass

        def on_metrics(self, execution: object, points: object) -> None:
            pass

    async def main() -> list[float]:
        containment = open_containment("auto", f"wait-bench-{os.getpid()}")
        launcher = Launcher(tmp / "logs", tmp / "work", containment=containment)
        out = []
        try:
            for i in range(runs):
                t0 = time.perf_counter()
                r = await launcher.start(AttemptRequest(f"f{i}", 1, TRUE), Sink()).done  # type: ignore[arg-type]
                out.append(1000 * (time.perf_counter() - t0))
                assert r.state is TaskState.SUCCEEDED, r.error
        finally:
            await launcher.close()  # (and its containment)
        return out

    return asyncio.run(main())


def waits(c: Controller, runs: int, ctl: psutil.Process) -> tuple[list[float], list[float], dict[str, list[float]]]:
    """(ms per submit -> wait -> done, controller CPU ms per run, ms per stage of each run).

    The stages come from the clocks of this host: the client's, and the times the controller (submitted,
    dispatched) and the runner (started, finished) recorded on the task."""
    lat, cpu = [], []
    stages: dict[str, list[float]] = {k: [] for k in STAGES}
    for _ in range(runs):
        c0 = _cpu(ctl)
        w0, t0 = time.time(), time.perf_counter()
        tid = c.add_task(TRUE)
        w1 = time.time()
        (done,) = c.wait([tid], timeout=60)
        w2, t2 = time.time(), time.perf_counter()
        lat.append(1000 * (t2 - t0))
        cpu.append(1000 * (_cpu(ctl) - c0))
        assert done.state is TaskState.SUCCEEDED, done
        a = done.attempts[-1]
        assert done.submitted_at is not None and a.dispatched_at is not None and a.finished_at is not None
        started = a.finished_at - a.duration_s
        marks = (w0, w1, done.submitted_at, a.dispatched_at, started, a.finished_at, w2)
        for k, (x, y) in zip(STAGES, _spans(marks), strict=True):
            stages[k].append(1000 * (y - x))
    return lat, cpu, stages


STAGES = (
    "submit call (client)",
    "submitted -> dispatched (controller)",
    "dispatched -> process started (assign, runner, spawn)",
    "process started -> ended (runner)",
    "ended -> wait returned (report, commit, event, client)",
)


def _spans(m: tuple[float, ...]) -> list[tuple[float, float]]:
    w0, w1, submitted, dispatched, started, finished, w2 = m
    return [(w0, w1), (submitted, dispatched), (dispatched, started), (started, finished), (finished, w2)]


def event_split(c: Controller, runs: int) -> dict[str, list[float]]:
    """ms from the runner's end of the process to the controller publishing the task's end, and from there to
    the client holding the event: the same Watch as wait([id]) asks for, read with watch(select=...)."""
    out: dict[str, list[float]] = {k: [] for k in SPLIT}
    for _ in range(runs):
        tid = c.add_task(TRUE)
        select = WatchFilter(task_ids=(tid,), exclude_usage=True, exclude_progress=True, exclude_executors=True)
        stream = c.watch(select=select, timeout=60)
        for event in stream:
            body = event.body
            if isinstance(body, ev.TaskEvent) and body.task.state.finished:
                got = time.time()
                end = body.task.attempts[-1].finished_at
                assert end is not None
                out[SPLIT[0]].append(1000 * (event.at - end))
                out[SPLIT[1]].append(1000 * (got - event.at))
                break
        stream.close()  # type: ignore[attr-defined]
    return out


SPLIT = (
    "  of which ended -> controller published (report, commit)",
    "  of which published -> client has the event (Watch, gRPC)",
)


def unfiltered_waits(c: Controller, stub: controller_pb2_grpc.ControllerStub, runs: int) -> list[float]:
    """ms per submit -> done when the wait reads a Watch of every task (as before Watch filters)."""
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        tid = c.add_task(TRUE)
        stream = stub.Watch(pb.WatchRequest(exclude_usage=True, exclude_progress=True), timeout=120)
        for msg in stream:
            kind = msg.WhichOneof("event")
            tasks = msg.snapshot.tasks if kind == "snapshot" else [msg.task.task] if kind == "task" else []
            if any(t.id == tid and t.state == cpb.TASK_STATE_SUCCEEDED for t in tasks):
                break
        stream.cancel()
        out.append(1000 * (time.perf_counter() - t0))
    return out


def up(address: str, certs: Path, name: str, timeout: float = 60.0) -> None:
    """Wait until the runner is connected (a Watch of executors only: no stored task is read)."""
    with Controller(address, certs=certs) as c:
        select = WatchFilter(task_ids=("0",), exclude_usage=True, exclude_progress=True)
        for event in c.watch(select=select, timeout=timeout):
            body = event.body
            execs = (
                body.executors
                if isinstance(body, ev.Snapshot)
                else [body.executor]
                if isinstance(body, ev.ExecutorEvent)
                else []
            )
            if any(e.name == name and not e.dead for e in execs):
                return
    raise TimeoutError(f"runner {name} did not connect within {timeout:g} s")


def _cpu(p: psutil.Process) -> float:
    t = p.cpu_times()
    return t.user + t.system


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stored", type=int, default=100_000, help="tasks in the store before the controller starts")
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--unfiltered", type=int, default=0, help="also time this many waits on an unfiltered Watch")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        home = Path(d) / "home"
        t0 = time.perf_counter()
        make_certs(home / "certs")
        print(f"certificates made in {time.perf_counter() - t0:.1f} s", flush=True)
        t0 = time.perf_counter()
        fill_store(home / "controller.db", args.stored)
        print(f"stored {args.stored} finished tasks in the store file in {time.perf_counter() - t0:.1f} s", flush=True)
        t0 = time.perf_counter()
        lo, hi = free_port_range()
        ctl = start_dtask(
            [
                "--set",
                "controller.dead_after_s=30",
                "--set",
                "controller.lost_after_s=60",
                "controller",
                "--host",
                "127.0.0.1",
                "--port-range",
                f"{lo}-{hi}",
            ],
            home,
        )
        print(f"controller up in {time.perf_counter() - t0:.1f} s", flush=True)
        runner = start_runner(home, ctl.address, "r1", 1)
        try:
            up(ctl.address, home / "certs", "r1")
            print(
                f"controller pid {ctl.popen.pid}, runner pid {runner.popen.pid} (up at {time.perf_counter() - t0:.1f} s)",
                flush=True,
            )
            proc = psutil.Process(ctl.popen.pid)
            with Controller(ctl.address, certs=home / "certs", timeout=60) as c:
                waits(c, args.warmup, proc)
                inline_floor(args.warmup)
                floor = inline_floor(args.runs)
                launched = launcher_floor(args.runs, Path(d))
                t1 = time.perf_counter()
                lat, cpu, stages = waits(c, args.runs, proc)
                print(f"{args.runs} waits in {time.perf_counter() - t1:.1f} s", flush=True)
                split = event_split(c, min(args.runs, 100))
                if args.unfiltered:
                    ch = sync_channel(ctl.address, tls(home / "certs", "operator"))
                    old = unfiltered_waits(c, controller_pb2_grpc.ControllerStub(ch), args.unfiltered)
                    ch.close()
        finally:
            t1 = time.perf_counter()
            runner.stop()
            t2 = time.perf_counter()
            ctl.stop()
            print(
                f"stopped the runner in {t2 - t1:.1f} s, the controller in {time.perf_counter() - t2:.1f} s", flush=True
            )
    f50, f99, w50, w99 = pct(floor, 50), pct(floor, 99), pct(lat, 50), pct(lat, 99)
    print(f"inline subprocess.run(['/bin/true']), {args.runs} runs: p50 {f50:.2f} ms, p99 {f99:.2f} ms")
    print(
        f"the runner's launcher alone (log, cgroup, gate shell; no gRPC, no store): p50 {pct(launched, 50):.2f} ms, "
        f"p99 {pct(launched, 99):.2f} ms ({pct(launched, 50) / f50:.2f}x inline; the target leaves {3 * f50:.2f} ms "
        "for everything)"
    )
    print(
        f"submit -> wait([id]) -> done, {args.stored} tasks stored, {args.runs} runs: "
        f"p50 {w50:.2f} ms, p99 {w99:.2f} ms (mean {statistics.fmean(lat):.2f} ms)"
    )
    print(f"controller CPU per run: p50 {pct(cpu, 50):.2f} ms, mean {statistics.fmean(cpu):.2f} ms")
    print(
        f"ratios: wait p50 / inline p50 = {w50 / f50:.2f} (target <= 3), "
        f"wait p99 / wait p50 = {w99 / w50:.2f} (target <= 2)"
    )
    print("stages, p50 / p99 ms:")
    for k, v in [*stages.items(), *split.items()]:
        print(f"  {k}: {pct(v, 50):.2f} / {pct(v, 99):.2f}")
    if args.unfiltered:
        print(
            f"unfiltered Watch (every stored task in the snapshot), {args.unfiltered} runs: "
            f"p50 {pct(old, 50):.1f} ms, p99 {pct(old, 99):.1f} ms ({pct(old, 50) / w50:.0f}x the filtered wait)"
        )


if __name__ == "__main__":
    main()
