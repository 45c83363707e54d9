"""Controller benchmarks over mTLS with scripted runners: submit rate, memory per 100k queued tasks,
dispatch throughput with 2 and 200 runners, ListTasks first-page latency with 100k tasks stored.

Run from the repository root: .venv/bin/python -m bench.controller_bench [--tasks 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import psutil
from dtask.v1 import common_pb2 as cpb
from dtask.v1 import controller_pb2 as pb
from dtask.v1 import controller_pb2_grpc
from dtask_common import certs
from dtask_common.roles import Role

from bench.cluster import start_controller
from tests.integration.controller.scripted_runner import ScriptedRunner
from tests.support import Proc, aio_channel, make_certs, tls

BATCH = 10_000


def rss_mb(proc: Proc) -> float:
    return psutil.Process(proc.popen.pid).memory_info().rss / 2**20


def specs(n: int, prefix: str) -> list[cpb.TaskSpec]:
    return [cpb.TaskSpec(name=f"{prefix}{i}", shell=f"python train.py --seed {i}", tags=["bench"]) for i in range(n)]


async def submit_all(stub: controller_pb2_grpc.ControllerStub, n: int) -> float:
    start = time.perf_counter()
    for first in range(0, n, BATCH):
        await stub.SubmitTasks(pb.SubmitTasksRequest(tasks=specs(min(BATCH, n - first), f"t{first}-")), timeout=120)
    return time.perf_counter() - start


async def bench_submit_and_list(home: Path, n: int) -> dict[str, float]:
    proc = start_controller(home)
    try:
        ch = aio_channel(proc.address, tls(home / "certs", "operator"))
        stub = controller_pb2_grpc.ControllerStub(ch)
        await stub.ListTasks(pb.ListTasksRequest(), timeout=10)
        before = rss_mb(proc)
        took = await submit_all(stub, n)
        after = rss_mb(proc)
        lat: dict[str, list[float]] = {"all": [], "pending": [], "tag": []}
        for _ in range(30):
            for key, req in (
                ("all", pb.ListTasksRequest()),
                ("pending", pb.ListTasksRequest(states=[cpb.TASK_STATE_PENDING])),
                ("tag", pb.ListTasksRequest(tag="bench")),
            ):
                t0 = time.perf_counter()
                resp = await stub.ListTasks(req, timeout=30)
                lat[key].append(time.perf_counter() - t0)
                assert len(resp.tasks) == 100 and resp.total == n
        await ch.close()
        return {
            "submit_tasks_per_s": n / took,
            "submit_s": took,
            "rss_before_mb": before,
            "rss_after_mb": after,
            "mb_per_100k": (after - before) * 100_000 / n,
            **{f"list_{k}_ms_p50": statistics.median(v) * 1000 for k, v in lat.items()},
        }
    finally:
        proc.stop()


async def bench_dispatch(home: Path, runners: int, n: int) -> dict[str, float]:
    """n tasks queued while paused; resume; runners finish each assignment at once; time until all acked."""
    proc = start_controller(home)
    try:
        ch = aio_channel(proc.address, tls(home / "certs", "operator"))
        stub = controller_pb2_grpc.ControllerStub(ch)
        await stub.PauseQueue(pb.PauseQueueRequest(), timeout=10)
        await submit_all(stub, n)
        rs = [ScriptedRunner(proc.address, home / "certs", f"b{i}", slots=1) for i in range(runners)]
        await asyncio.gather(*(r.connect(timeout=60) for r in rs))
        done = 0
        all_done = asyncio.Event()

        async def work(r: ScriptedRunner) -> None:
            nonlocal done
            while True:
                msg = await r.recv(timeout=120)
                kind = msg.WhichOneof("msg")
                if kind == "assign":
                    r.finish(msg.assign.task_id, msg.assign.attempt)
                elif kind == "ack":
                    done += 1
                    if done == n:
                        all_done.set()

        workers = [asyncio.create_task(work(r)) for r in rs]
        cpu0 = sum(psutil.Process(proc.popen.pid).cpu_times()[:2])
        t0 = time.perf_counter()
        await stub.ResumeQueue(pb.ResumeQueueRequest(), timeout=10)
        await asyncio.wait_for(all_done.wait(), 600)
        took = time.perf_counter() - t0
        cpu = sum(psutil.Process(proc.popen.pid).cpu_times()[:2]) - cpu0
        fin = await stub.IsFinished(pb.IsFinishedRequest(), timeout=10)
        assert fin.finished and fin.queue.succeeded == n, fin
        for w in workers:
            w.cancel()
        await asyncio.gather(*(r.drop() for r in rs), return_exceptions=True)
        await ch.close()
        return {
            "runners": runners,
            "tasks": n,
            "seconds": took,
            "tasks_per_s": n / took,
            "controller_cpu_ms_per_task": cpu * 1000 / n,
        }
    finally:
        proc.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tasks", type=int, default=100_000, help="tasks to submit for the submit/list benchmark")
    ap.add_argument("--dispatch-tasks", type=int, default=10_000, help="tasks per dispatch run")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="dtask-bench-"))
    certs_dir = make_certs(root / "certs-template" / "certs", runners=())
    for i in range(200):
        certs.issue(certs_dir, Role.RUNNER, f"b{i}")

    def fresh(name: str) -> Path:
        import shutil

        home = root / name
        shutil.copytree(certs_dir, home / "certs")
        return home

    s = asyncio.run(bench_submit_and_list(fresh("submit"), args.tasks))
    print(
        f"submit {args.tasks} tasks: {s['submit_s']:.1f} s = {s['submit_tasks_per_s']:.0f} tasks/s; "
        f"controller RSS {s['rss_before_mb']:.0f} -> {s['rss_after_mb']:.0f} MB "
        f"({s['mb_per_100k']:.0f} MB per 100k queued)"
    )
    print(
        f"ListTasks first page with {args.tasks} stored (p50 of 30): all {s['list_all_ms_p50']:.1f} ms, "
        f"state=PENDING {s['list_pending_ms_p50']:.1f} ms, tag {s['list_tag_ms_p50']:.1f} ms"
    )
    for runners in (2, 200):
        d = asyncio.run(bench_dispatch(fresh(f"dispatch{runners}"), runners, args.dispatch_tasks))
        print(
            f"dispatch with {runners} runners: {d['tasks']} tasks (assign -> result -> ack) in {d['seconds']:.1f} s"
            f" = {d['tasks_per_s']:.0f} tasks/s (controller CPU {d['controller_cpu_ms_per_task']:.2f} ms per task)"
        )


if __name__ == "__main__":
    main()
