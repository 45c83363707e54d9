"""Live metrics at scale: the controller's CPU with 200 running tasks whose runners report progress 5 times a
second, each report carrying one point of each of 5 metrics (5 metrics updated 5 times a second per task: 5,000
points a second in all), beside the same 200 tasks reporting the same progress with no metrics, in the same run
(the floor), with one watcher following every event (as the TUI). Target: metrics add at most 10% of one core.

The runners are simulated (bench/storm_fleet.py): each is the runner's real ControllerSession over its own mTLS
certificate (real gRPC sessions), from a few client processes, each holding one task that never ends. The phases
alternate (floor, metrics, floor, metrics, ...) so that the machine's drift hits both alike; each phase's CPU figure
is the controller process's user + system time over --window seconds (psutil), as % of one core; what metrics add
is the median over the rounds of each metrics phase minus the floor phase just before it.

Run from the repository root: .venv/bin/python -m bench.metrics_bench [--tasks 200] [--hz 5] [--metrics 5]
[--window 10] [--rounds 3] [--clients 2] [--profile FILE (cProfile stats of the controller)]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from dtask.v1 import common_pb2 as cpb
from dtask.v1 import controller_pb2 as pb
from dtask.v1 import controller_pb2_grpc
from dtask_common import certs
from dtask_common.roles import Role

from bench.cluster import cpu_s, start_controller
from bench.fleet_bench import Watchers
from bench.storm_bench import Fleets
from tests.support import make_certs, sync_channel, tls

TARGET_PCT = 10.0  # % of one core that metrics may add
SETTLE_S = 2.0  # after a phase change, before measuring


@dataclass
class Result:
    tasks: int
    hz: float
    metrics: int
    window_s: float
    floor_pct: list[float] = field(default_factory=list)
    metrics_pct: list[float] = field(default_factory=list)
    watch_events_s: list[float] = field(default_factory=list)

    @property
    def added_pct(self) -> float:
        """What metrics add: the median over rounds of (metrics phase - the floor phase just before it)."""
        return statistics.median(m - f for m, f in zip(self.metrics_pct, self.floor_pct, strict=True))


def _running(address: str, certs_dir: Path, n: int) -> None:
    """n tasks submitted; until the controller runs all of them (one on each simulated runner)."""
    with sync_channel(address, tls(certs_dir, "operator")) as ch:
        stub = controller_pb2_grpc.ControllerStub(ch)
        stub.SubmitTasks(
            pb.SubmitTasksRequest(tasks=[cpb.TaskSpec(name=f"train[{i}]", shell="true") for i in range(n)]),
            timeout=60,
        )
        deadline = time.monotonic() + 120
        while stub.IsFinished(pb.IsFinishedRequest(), timeout=30).queue.running < n:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{n} tasks were not all running within 120 s")
            time.sleep(0.05)  # the polling period, not synchronisation


def run(
    tasks: int = 200,
    hz: float = 5.0,
    metrics: int = 5,
    window_s: float = 10.0,
    rounds: int = 3,
    clients: int = 2,
    profile: str = "",
) -> Result:
    res = Result(tasks, hz, metrics, window_s)
    root = Path(tempfile.mkdtemp(prefix="dtask-metrics-"))
    try:
        certs_dir = make_certs(root / "home" / "certs", runners=())
        names = [f"m{i}" for i in range(tasks)]
        for n in names:
            certs.issue(certs_dir, Role.RUNNER, n)
        ctl = start_controller(root / "home", profile=profile)
        fleets = Fleets(ctl.address, certs_dir, names, clients)
        try:
            fleets.send("watch", 0.0)
            fleets.send("connect")
            fleets.gather("back", 300)
            _running(ctl.address, certs_dir, tasks)
            fleets.gather("assigned", 60)
            w = Watchers.open(ctl.address, certs_dir, 1)
            pid = ctl.popen.pid
            for _ in range(rounds):
                for with_metrics in (False, True):
                    fleets.send("report", hz, metrics if with_metrics else 0)
                    fleets.gather("reporting", 30)
                    time.sleep(SETTLE_S)
                    c0, t0, e0 = cpu_s(pid), time.perf_counter(), sum(w.events)
                    time.sleep(window_s)  # the measurement window
                    took = time.perf_counter() - t0
                    pct = 100 * (cpu_s(pid) - c0) / took
                    (res.metrics_pct if with_metrics else res.floor_pct).append(pct)
                    if with_metrics:
                        res.watch_events_s.append((sum(w.events) - e0) / took)
            fleets.send("report", 0, 0)
            w.close()
        finally:
            fleets.close()
            ctl.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return res


def report(r: Result) -> str:
    floor, with_m = statistics.mean(r.floor_pct), statistics.mean(r.metrics_pct)
    rows = [
        (
            f"floor: {r.tasks} tasks, progress {r.hz:g}/s each, no metrics",
            f"{floor:.1f}% of one core (phases: {', '.join(f'{x:.1f}' for x in r.floor_pct)})",
        ),
        (
            f"the same with {r.metrics} metrics each ({r.tasks * r.metrics * r.hz:.0f} points/s)",
            f"{with_m:.1f}% of one core (phases: {', '.join(f'{x:.1f}' for x in r.metrics_pct)})",
        ),
        (
            "added by metrics (median of the rounds' differences)",
            f"{r.added_pct:+.1f}% of one core; target <= {TARGET_PCT:g}%: "
            f"{'OK' if r.added_pct <= TARGET_PCT else 'OVER'}; ratio {with_m / floor if floor else float('nan'):.2f}x",
        ),
        ("  the watcher got", f"{statistics.mean(r.watch_events_s):.0f} events/s"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", type=int, default=200)
    ap.add_argument("--hz", type=float, default=5.0, help="progress reports per second per task")
    ap.add_argument("--metrics", type=int, default=5, help="metrics per report")
    ap.add_argument("--window", type=float, default=10.0, help="seconds each phase is measured")
    ap.add_argument("--rounds", type=int, default=3, help="floor/metrics phase pairs")
    ap.add_argument("--clients", type=int, default=2, help="client processes the runners are spread over")
    ap.add_argument("--profile", default="", help="run the controller under cProfile, its stats to FILE")
    args = ap.parse_args()
    r = run(args.tasks, args.hz, args.metrics, args.window, args.rounds, args.clients, args.profile)
    print(f"live metrics: {r.tasks} running tasks on simulated runners over mTLS, 1 watcher")
    print(report(r))


if __name__ == "__main__":
    main()
