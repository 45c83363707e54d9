"""A fleet at scale: the controller's CPU with 1,000 connected runners sending usage at 1 Hz and 5 watchers
following every event (usage included), the queue idle; then the dispatch rate of 2,000 tasks over that
fleet beside the same 2,000 tasks over 2 runners (a fresh controller, the same simulated runners).

The runners are simulated (bench/storm_fleet.py, as in the reconnect storm): each is the runner's real
ControllerSession over its own mTLS certificate, from a few client processes (asyncio); in the dispatch
runs each reports an assignment succeeded as soon as it arrives. The CPU figure is the controller process's
user + system time over --idle seconds (psutil), as % of one core; target <= 25%. The floor of the dispatch
figure is the 2-runner rate of the same run (each the best of two runs); target: the fleet at least as fast.
On a loaded machine the simulated runners send fewer reports and the CPU figure drops with them: the usage
reports the controller took a second (as its watchers saw them) and the load average show it.

Run from the repository root: .venv/bin/python -m bench.fleet_bench [--runners 1000] [--clients 4]
[--watchers 5] [--idle 20] [--tasks 2000] [--profile FILE (py-spy into .venv: the controller while idle)]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from dtask.v1 import common_pb2 as cpb
from dtask.v1 import controller_pb2 as pb
from dtask.v1 import controller_pb2_grpc
from dtask_common import certs
from dtask_common.roles import Role

from bench.cluster import cpu_s, start_controller
from bench.storm_bench import Fleets
from tests.support import BIN, make_certs, sync_channel, tls

CPU_TARGET = 25.0  # % of one core, idle queue
ROUNDS = 2  # dispatch runs of each kind; the best counts (a few seconds each on a shared machine)
MAX_BATCH = 1000  # what the watchers ask for (as the TUI): up to this many ready events in one message


@dataclass
class Watchers:
    """Raw Watch streams with usage and progress, read (not converted) in threads; they count what they get."""

    channels: list[grpc.Channel] = field(default_factory=list)
    events: list[int] = field(default_factory=list)
    messages: list[int] = field(default_factory=list)
    usage: list[int] = field(default_factory=list)  # usage events: the samples the controller took

    @classmethod
    def open(cls, address: str, certs_dir: Path, k: int) -> Watchers:
        w = cls(events=[0] * k, messages=[0] * k, usage=[0] * k)
        for i in range(k):
            ch = sync_channel(address, tls(certs_dir, "viewer"))
            stream = controller_pb2_grpc.ControllerStub(ch).Watch(pb.WatchRequest(max_batch=MAX_BATCH))
            threading.Thread(target=w._drain, args=(i, stream), daemon=True).start()
            w.channels.append(ch)
        return w

    def _drain(self, i: int, stream: object) -> None:
        try:
            for msg in stream:  # type: ignore[attr-defined]
                events = msg.batch.events if msg.HasField("batch") else [msg]
                self.events[i] += len(events)
                self.usage[i] += sum(1 for e in events if e.HasField("usage"))
                self.messages[i] += 1
        except grpc.RpcError:
            pass

    def close(self) -> None:
        for ch in self.channels:
            ch.close()


def dispatch(address: str, certs_dir: Path, n: int) -> float:
    """n tasks queued while paused, then resumed: seconds until all have succeeded."""
    with sync_channel(address, tls(certs_dir, "operator")) as ch:
        stub = controller_pb2_grpc.ControllerStub(ch)
        stub.PauseQueue(pb.PauseQueueRequest(), timeout=30)
        before = stub.IsFinished(pb.IsFinishedRequest(), timeout=30).queue.succeeded
        for first in range(0, n, 1000):
            batch = [cpb.TaskSpec(name=f"d{i}", shell="true") for i in range(first, min(n, first + 1000))]
            stub.SubmitTasks(pb.SubmitTasksRequest(tasks=batch), timeout=120)
        t0 = time.perf_counter()
        stub.ResumeQueue(pb.ResumeQueueRequest(), timeout=30)
        deadline = t0 + 600
        while True:
            q = stub.IsFinished(pb.IsFinishedRequest(), timeout=30)
            if q.finished:
                took = time.perf_counter() - t0
                assert q.queue.succeeded - before == n, q
                return took
            if time.perf_counter() > deadline:
                raise TimeoutError(f"dispatch of {n} tasks not finished in 600 s: {q.queue}")
            time.sleep(0.01)  # the polling period, not synchronisation


def _spy(pid: int, out: str) -> subprocess.Popen[bytes] | None:
    """py-spy recording the process into out (collapsed stacks); None when out is empty."""
    if not out:
        return None
    cmd = [str(BIN / "py-spy"), "record", "-p", str(pid), "-o", out, "-f", "raw", "-r", "100"]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _stop(spy: subprocess.Popen[bytes] | None) -> None:
    if spy is not None:
        spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        spy.wait(30)


@dataclass
class Result:
    runners: int
    watchers: int
    idle_s: float
    connect_s: float = 0.0
    cpu_pct: float = 0.0
    client_cpu_pct: float = 0.0
    watch_events_s: float = 0.0
    watch_messages_s: float = 0.0
    usage_s: float = 0.0  # usage samples the controller took a second (as its watchers saw them)
    load: tuple[float, float] = (0.0, 0.0)  # the machine's 1-minute load average before and after the window
    fleet_tasks_s: float = 0.0
    two_tasks_s: float = 0.0


def run(
    runners: int = 1000, clients: int = 4, watchers: int = 5, idle_s: float = 20.0, tasks: int = 2000, profile: str = ""
) -> Result:
    res = Result(runners, watchers, idle_s)
    root = Path(tempfile.mkdtemp(prefix="dtask-fleet-"))
    try:
        certs_dir = make_certs(root / "fleet" / "certs", runners=())
        names = [f"f{i}" for i in range(runners)]
        for n in names:
            certs.issue(certs_dir, Role.RUNNER, n)
        ctl = start_controller(root / "fleet")
        fleets = Fleets(ctl.address, certs_dir, names, clients)
        try:
            t0 = time.monotonic()
            fleets.send("finish")
            fleets.send("watch", 0.0)
            fleets.send("connect")
            fleets.gather("back", 300)
            res.connect_s = time.monotonic() - t0
            w = Watchers.open(ctl.address, certs_dir, watchers)
            time.sleep(5)  # settle: every runner's usage loop running, watchers past their snapshot
            pid = ctl.popen.pid
            clients_pids = [p.pid for p in fleets.procs if p.pid is not None]
            spy = _spy(pid, profile)
            load0 = os.getloadavg()[0]
            c0, k0, t0 = cpu_s(pid), sum(map(cpu_s, clients_pids)), time.perf_counter()
            e0, m0, u0 = sum(w.events), sum(w.messages), sum(w.usage)
            time.sleep(idle_s)  # the measurement window
            took = time.perf_counter() - t0
            res.cpu_pct = 100 * (cpu_s(pid) - c0) / took
            res.client_cpu_pct = 100 * (sum(map(cpu_s, clients_pids)) - k0) / took
            res.watch_events_s = (sum(w.events) - e0) / took
            res.watch_messages_s = (sum(w.messages) - m0) / took
            res.usage_s = (sum(w.usage) - u0) / took / max(1, watchers)
            res.load = (load0, os.getloadavg()[0])
            _stop(spy)
            w.close()  # the 2-runner floor has no watchers either
            spy = _spy(pid, profile and profile + ".dispatch")
            res.fleet_tasks_s = max(tasks / dispatch(ctl.address, certs_dir, tasks) for _ in range(ROUNDS))
            _stop(spy)
        finally:
            fleets.close()
            ctl.stop()
        home2 = root / "two"
        shutil.copytree(certs_dir, home2 / "certs")
        ctl = start_controller(home2)
        fleets = Fleets(ctl.address, home2 / "certs", names[:2], 1)
        try:
            fleets.send("finish")
            fleets.send("watch", 0.0)
            fleets.send("connect")
            fleets.gather("back", 60)
            res.two_tasks_s = max(tasks / dispatch(ctl.address, home2 / "certs", tasks) for _ in range(ROUNDS))
        finally:
            fleets.close()
            ctl.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return res


def report(r: Result, tasks: int) -> str:
    rows = [
        (f"{r.runners} runners connected (usage at 1 Hz)", f"{r.connect_s:.1f} s"),
        (
            f"controller CPU, idle queue, {r.watchers} watchers, {r.idle_s:g} s",
            f"{r.cpu_pct:.1f}% of one core; target <= {CPU_TARGET:g}%: {r.cpu_pct / CPU_TARGET:.2f}x target "
            f"({'OK' if r.cpu_pct <= CPU_TARGET else 'OVER'})",
        ),
        ("  the simulated runners' processes meanwhile", f"{r.client_cpu_pct:.1f}% of one core"),
        (
            "  usage reports the controller took",
            f"{r.usage_s:.0f}/s of the fleet's {r.runners}/s ({r.usage_s / max(1, r.runners):.0%})",
        ),
        ("  load average (1 min) before / after", f"{r.load[0]:.2f} / {r.load[1]:.2f} on {os.cpu_count()} cores"),
        (
            f"  each watcher got (max_batch {MAX_BATCH})",
            f"{r.watch_events_s / max(1, r.watchers):.0f} events/s in "
            f"{r.watch_messages_s / max(1, r.watchers):.0f} messages/s",
        ),
        (f"dispatch {tasks} tasks over {r.runners} runners (best of {ROUNDS})", f"{r.fleet_tasks_s:.0f} tasks/s"),
        (f"floor: dispatch {tasks} tasks over 2 runners (best of {ROUNDS})", f"{r.two_tasks_s:.0f} tasks/s"),
        (
            "fleet / 2 runners",
            f"{r.fleet_tasks_s / r.two_tasks_s:.2f}x ({'OK' if r.fleet_tasks_s >= r.two_tasks_s else 'SLOWER'})",
        ),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runners", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=4, help="client processes the runners are spread over")
    ap.add_argument("--watchers", type=int, default=5)
    ap.add_argument("--idle", type=float, default=20.0, help="seconds the controller's CPU is measured")
    ap.add_argument("--tasks", type=int, default=2000)
    ap.add_argument("--profile", default="", help="py-spy the controller while idle; collapsed stacks to this file")
    args = ap.parse_args()
    r = run(args.runners, args.clients, args.watchers, args.idle, args.tasks, args.profile)
    print(f"fleet: {r.runners} simulated runners over mTLS, {r.watchers} watchers")
    print(report(r, args.tasks))


if __name__ == "__main__":
    main()
