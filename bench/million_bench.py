"""A million queued tasks: the controller's memory per task, the submit rate through SubmitTasks in batches of
10,000 (the most one call takes), the latency of ListTasks' first page with them all stored, and of a
wait([id]) for one finished task among them (its Watch opened, its snapshot read).

Targets: <= 1 KiB of RSS per queued task, >= 50,000 tasks/s submitted, <= 10 ms for the first page. Floors,
measured in the same run: for the submit rate, plain sqlite3 in this process inserting the same rows (task,
spec JSON, tag) into the same schema in 10,000-row transactions, with no gRPC, checks or scheduler; for the
first page, one unary IsFinished round trip over the same mTLS channel. The queue is paused (nothing to run).

Run from the repository root: .venv/bin/python -m bench.million_bench [--tasks 1000000] [--profile FILE]
(--profile: py-spy the controller while it takes the submissions; collapsed stacks to FILE)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from dtask.v1 import common_pb2 as cpb
from dtask.v1 import controller_pb2 as pb
from dtask.v1 import controller_pb2_grpc
from dtask_controller.store.schema import migrate

from bench.cluster import cpu_s, rss_bytes, start_controller
from bench.controller_bench import BATCH, specs
from tests.support import BIN, aio_channel, make_certs, tls

MEMORY_TARGET = 1024  # bytes per queued task
SUBMIT_TARGET = 50_000  # tasks/s
LIST_TARGET_MS = 10.0


@dataclass
class Result:
    tasks: int
    rss_before: int = 0
    rss_after: int = 0
    submit_s: float = 0.0
    submit_cpu_s: float = 0.0  # the controller's CPU time meanwhile (steadier than wall time on a shared machine)
    floor_submit_s: float = 0.0
    floor_cpu_s: float = 0.0
    list_ms: float = 0.0
    list_pending_ms: float = 0.0
    floor_rtt_ms: float = 0.0
    wait_ms: float = 0.0  # wait([id]) of one finished task: its Watch opened and its snapshot read

    @property
    def per_task(self) -> float:
        return (self.rss_after - self.rss_before) / self.tasks


def sqlite_floor(path: Path, n: int) -> tuple[float, float]:
    """Seconds (wall, CPU) for plain sqlite3 to insert n tasks rows (and their tag) like the store does, in BATCH-row commits."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    migrate(db)
    t0, c0 = time.perf_counter(), time.process_time()
    for first in range(0, n, BATCH):
        rows = []
        for i in range(first, min(n, first + BATCH)):
            spec = {"name": f"t{first}-{i - first}", "shell": f"python train.py --seed {i - first}", "tags": ["bench"]}
            rows.append((i + 1, spec["name"], json.dumps(spec, separators=(",", ":")), "pending", 0, 1.0))
        db.execute("BEGIN")
        db.executemany("INSERT INTO tasks (id, name, spec, state, priority, submitted_at) VALUES (?,?,?,?,?,?)", rows)
        db.executemany("INSERT INTO task_tags (tag, task_id) VALUES (?, ?)", [("bench", r[0]) for r in rows])
        db.execute("COMMIT")
    took, cpu = time.perf_counter() - t0, time.process_time() - c0
    db.close()
    return took, cpu


async def measure(home: Path, n: int, profile: str) -> Result:
    res = Result(n)
    ctl = start_controller(home)
    try:
        ch = aio_channel(ctl.address, tls(home / "certs", "operator"))
        stub = controller_pb2_grpc.ControllerStub(ch)
        await stub.PauseQueue(pb.PauseQueueRequest(), timeout=10)
        await stub.SubmitTasks(pb.SubmitTasksRequest(tasks=specs(10, "warm")), timeout=60)
        await stub.ListTasks(pb.ListTasksRequest(), timeout=10)
        batches = [pb.SubmitTasksRequest(tasks=specs(min(BATCH, n - f), f"t{f}-")) for f in range(0, n, BATCH)]
        res.rss_before = rss_bytes(ctl.popen.pid)
        spy = None
        if profile:
            cmd = [str(BIN / "py-spy"), "record", "-p", str(ctl.popen.pid), "-o", profile, "-f", "raw", "-r", "100"]
            spy = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        c0, t0 = cpu_s(ctl.popen.pid), time.perf_counter()
        for req in batches:
            await stub.SubmitTasks(req, timeout=300)
        res.submit_s = time.perf_counter() - t0
        res.submit_cpu_s = cpu_s(ctl.popen.pid) - c0
        if spy is not None:
            spy.send_signal(2)
            spy.wait(30)
        res.rss_after = rss_bytes(ctl.popen.pid)
        lat: dict[str, list[float]] = {"all": [], "pending": [], "rtt": []}
        for _ in range(30):
            for key, call in (
                ("all", lambda: stub.ListTasks(pb.ListTasksRequest(), timeout=30)),
                ("pending", lambda: stub.ListTasks(pb.ListTasksRequest(states=[cpb.TASK_STATE_PENDING]), timeout=30)),
                ("rtt", lambda: stub.IsFinished(pb.IsFinishedRequest(), timeout=30)),
            ):
                t = time.perf_counter()
                resp = await call()
                lat[key].append((time.perf_counter() - t) * 1000)
                if key != "rtt":
                    assert len(resp.tasks) == 100 and resp.total == n + 10, (len(resp.tasks), resp.total)
        res.list_ms = statistics.median(lat["all"])
        res.list_pending_ms = statistics.median(lat["pending"])
        res.floor_rtt_ms = statistics.median(lat["rtt"])
        res.wait_ms = await wait_one(stub)
        await ch.close()
    finally:
        ctl.stop()
    return res


async def wait_one(stub: controller_pb2_grpc.ControllerStub) -> float:
    """p50 ms of 30 waits for one finished task (the last one, cancelled) as the client's wait([id]) asks:
    a Watch of that task only, until its snapshot shows it finished."""
    listed = await stub.ListTasks(pb.ListTasksRequest(), timeout=30)
    tid = listed.tasks[0].id
    await stub.CancelTask(pb.CancelTaskRequest(task_id=tid), timeout=30)
    took = []
    for _ in range(30):
        t = time.perf_counter()
        req = pb.WatchRequest(task_ids=[tid], exclude_usage=True, exclude_progress=True, exclude_executors=True)
        stream = stub.Watch(req, timeout=30)
        async for msg in stream:
            if msg.WhichOneof("event") == "snapshot" and any(
                x.id == tid and x.state == cpb.TASK_STATE_CANCELLED for x in msg.snapshot.tasks
            ):
                break
        stream.cancel()
        took.append((time.perf_counter() - t) * 1000)
    return statistics.median(took)


def report(r: Result) -> str:
    rate = r.tasks / r.submit_s
    floor = r.tasks / r.floor_submit_s
    rows = [
        (
            f"controller RSS per queued task ({r.rss_before / 2**20:.0f} -> {r.rss_after / 2**20:.0f} MiB)",
            f"{r.per_task:.0f} B; target <= {MEMORY_TARGET} B: {r.per_task / MEMORY_TARGET:.2f}x target",
        ),
        (
            f"submit {r.tasks} tasks, batches of {BATCH}",
            f"{r.submit_s:.1f} s = {rate:.0f} tasks/s; target >= {SUBMIT_TARGET}: {rate / SUBMIT_TARGET:.2f}x target",
        ),
        (
            "  per CPU second of the controller",
            f"{r.tasks / r.submit_cpu_s:.0f} tasks/s ({1e6 * r.submit_cpu_s / r.tasks:.1f} us of CPU per task); "
            f"floor {r.tasks / r.floor_cpu_s:.0f} per CPU second, dtask / floor {r.floor_cpu_s / r.submit_cpu_s:.2f}x",
        ),
        (
            "  floor: plain sqlite3 inserting the same rows",
            f"{r.floor_submit_s:.1f} s = {floor:.0f} tasks/s; dtask / floor {rate / floor:.2f}x",
        ),
        (
            "ListTasks first page (p50 of 30)",
            f"{r.list_ms:.1f} ms (state=PENDING {r.list_pending_ms:.1f} ms); target <= {LIST_TARGET_MS:g} ms: "
            f"{r.list_ms / LIST_TARGET_MS:.2f}x target",
        ),
        (
            "wait([id]) of one finished task (p50 of 30)",
            f"{r.wait_ms:.1f} ms; wait / IsFinished round trip {r.wait_ms / r.floor_rtt_ms:.1f}x",
        ),
        (
            "  floor: one IsFinished round trip",
            f"{r.floor_rtt_ms:.2f} ms; ListTasks / floor {r.list_ms / r.floor_rtt_ms:.1f}x",
        ),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", type=int, default=1_000_000)
    ap.add_argument("--profile", default="")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="dtask-million-") as d:
        home = Path(d) / "home"
        make_certs(home / "certs", runners=())
        r = asyncio.run(measure(home, args.tasks, args.profile))
        r.floor_submit_s, r.floor_cpu_s = sqlite_floor(Path(d) / "floor.db", args.tasks)
    print(f"a million queued tasks ({r.tasks}), queue paused")
    print(report(r))


if __name__ == "__main__":
    main()
