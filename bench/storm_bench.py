"""Reconnect storm: N runners, each holding one running attempt, come back after the controller is killed
(kill -9) and restarted at once on the same store and port.

The runners are simulated (bench/storm_fleet.py) but speak the real protocol through the runner's own ControllerSession
(Hello listing the running attempt and the process's instance id, the runner's backoff with jitter, one mTLS
certificate per runner, usage at the interval the Welcome asks for) from a few client processes. Time 0 is the
kill. Measured: restart -> listening; restart -> every session welcomed, then checked reconciled (each task
RUNNING on its original runner with its original attempt, nothing LOST or pending, no Cancel, no new Assign);
the spread of the reconnects (p50/p90/max), split into the backoff (when the successful attempt began, after
listening) and the service (that attempt -> Welcome: TLS handshake, Hello, reconciliation commit); the
controller's peak RSS (sampled, and the kernel's VmHWM), its RSS over --hold seconds of 1 Hz usage afterwards
(the per-executor usage history fills in 60 s, then RSS stays flat), and CPU seconds of the controller and the
clients during the storm. Executors the controller showed DEAD for a moment (no message for dead_after_s on an
overloaded machine; still connected) are counted, not failed. The floor, measured in the same run because the
machine is shared: the same N fresh mTLS connections, one certificate each, each making one unary WhoAmI call,
all at once, against the same controller. The ratio is (listening -> all reconciled) / floor.

Run from the repository root: .venv/bin/python -m bench.storm_bench [--runners 500] [--clients 2] [--hold 70]
[--profile FILE]. tests/faults/test_reconnect_storm.py runs it with 50 runners.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, cast

import psutil
from dtask.v1 import common_pb2 as cpb
from dtask.v1 import controller_pb2 as pb
from dtask.v1 import controller_pb2_grpc
from dtask_common import certs
from dtask_common.roles import Role

from bench import storm_fleet
from tests.support import BIN, free_port_range, make_certs, start_controller, sync_channel, tls


@dataclass
class Result:
    """What one storm measured; problems lists every broken promise (empty when all came back reconciled)."""

    runners: int
    clients: int
    certs_s: float = 0.0
    floor_s: float = 0.0
    listen_s: float = 0.0
    all_s: float = 0.0
    reconnect_s: list[float] = field(default_factory=list)  # restart -> welcomed, per runner
    arrival_s: list[float] = field(default_factory=list)  # listening -> the successful attempt began (backoff)
    served_s: list[float] = field(default_factory=list)  # that attempt -> its Welcome (TLS, Hello, reconcile)
    retries: int = 0
    extra_sessions: int = 0
    dead_flaps: int = 0
    peak_rss_mb: float = 0.0
    hwm_mb: float = 0.0
    rss_mb: list[tuple[float, float]] = field(default_factory=list)  # (s after all back, RSS) while held
    cpu_start_s: float = 0.0
    cpu_storm_s: float = 0.0
    client_cpu_s: float = 0.0
    reconciled: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return (self.all_s - self.listen_s) / self.floor_s if self.floor_s else 0.0


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))] if s else 0.0


def spread(xs: list[float]) -> str:
    return f"{pct(xs, 0.5):.2f} / {pct(xs, 0.9):.2f} / {max(xs, default=0):.2f} s"


class Fleets:
    """The client processes, each with its share of the runners."""

    def __init__(self, address: str, certs_dir: Path, names: list[str], clients: int):
        ctx = mp.get_context("spawn")
        self.cmds: list[Connection] = []
        self.events: list[Connection] = []
        self.procs = []
        for i in range(clients):
            cmd_r, cmd_w = ctx.Pipe(duplex=False)
            ev_r, ev_w = ctx.Pipe(duplex=False)
            p = ctx.Process(
                target=storm_fleet.main, args=(address, str(certs_dir), names[i::clients], cmd_r, ev_w), daemon=True
            )
            p.start()
            self.cmds.append(cmd_w)
            self.events.append(ev_r)
            self.procs.append(p)

    def send(self, *cmd: Any) -> None:
        for c in self.cmds:
            c.send(cmd)

    def gather(self, kind: str, timeout: float, *, tick: Any = None) -> list[tuple[Any, ...]]:
        """The next `kind` event of every fleet; tick() runs at least every 20 ms meanwhile (sampling the
        controller)."""
        got: dict[int, tuple[Any, ...]] = {}
        deadline = time.monotonic() + timeout
        while len(got) < len(self.events):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"fleets sent no {kind!r} within {timeout:g} s ({len(got)}/{len(self.events)})")
            for ready in wait(self.events, min(left, 0.02)):
                i = self.events.index(cast(Connection, ready))
                msg: tuple[Any, ...] = self.events[i].recv()
                if msg[0] == kind:
                    got[i] = msg
            if tick is not None:
                tick()
        return [got[i] for i in range(len(self.events))]

    def close(self) -> None:
        try:
            self.send("stop")
            self.gather("stopped", 30)
        except (OSError, TimeoutError, EOFError):
            pass
        for p in self.procs:
            p.join(5)
            if p.is_alive():
                p.kill()


def _hwm_mb(pid: int) -> float:
    """The kernel's peak resident set size of the process (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _tasks(address: str, certs_dir: Path) -> list[cpb.Task]:
    with sync_channel(address, tls(certs_dir, "operator")) as ch:
        stub = controller_pb2_grpc.ControllerStub(ch)
        out: list[cpb.Task] = []
        token = ""
        while True:
            page = stub.ListTasks(pb.ListTasksRequest(page_size=1000, page_token=token), timeout=60)
            out += page.tasks
            token = page.next_page_token
            if not token:
                return out


def _check(
    res: Result,
    address: str,
    certs_dir: Path,
    original: dict[str, tuple[str, int]],
    stats: list[dict[str, Any]],
    killed: float,
) -> None:
    """Every task RUNNING on its original runner with its only attempt; no cancel, no new assignment."""
    for t in _tasks(address, certs_dir):
        name, number = original.get(t.id, ("?", 0))
        ok = (
            t.state == cpb.TASK_STATE_RUNNING
            and len(t.attempts) == 1
            and t.attempts[0].number == number
            and t.attempts[0].executor == name
            and t.attempts[0].state == cpb.TASK_STATE_RUNNING
        )
        if ok:
            res.reconciled += 1
        elif len(res.problems) < 10:
            res.problems.append(
                f"task {t.id}: {cpb.TaskState.Name(t.state)}, attempts "
                f"{[(a.number, a.executor, cpb.TaskState.Name(a.state)) for a in t.attempts]}, "
                f"was attempt {number} on {name}"
            )
    with sync_channel(address, tls(certs_dir, "operator")) as ch:
        stub = controller_pb2_grpc.ControllerStub(ch)
        q = stub.IsFinished(pb.IsFinishedRequest(), timeout=30).queue
        execs = stub.ListExecutors(pb.ListExecutorsRequest(), timeout=30).executors
    if q.lost or q.running != res.runners or q.pending:
        res.problems.append(f"queue: {q.running} running, {q.lost} lost, {q.pending} pending")
    # DEAD only means no message for dead_after_s (an overloaded machine); it is still connected and counted
    # in dead_flaps. Anything else but BUSY is a runner that is not back.
    away = [
        f"{e.name} {cpb.ExecutorState.Name(e.state)}"
        for e in execs
        if e.state not in (cpb.EXECUTOR_STATE_BUSY, cpb.EXECUTOR_STATE_DEAD) or not e.HasField("connected_since")
    ]
    if away or len(execs) != res.runners:
        res.problems.append(f"{len(execs) - len(away)} of {res.runners} executors back ({', '.join(away[:5])})")
    for s in stats:
        res.retries += s["retries"]
        res.problems += [f"cancel {c}" for c in s["cancels"][:5]]
        res.problems += [f"{n} was assigned {a}" for n, a in s["assigns"].items() if len(a) != 1][:5]
        after = {n: [round(u - killed, 2) for u in ups if u > killed] for n, ups in s["sessions"].items()}
        res.extra_sessions += sum(len(a) - 1 for a in after.values() if a)
        res.problems += s["errors"] + s["failed"]
        if s["acks"]:
            res.problems.append(f"{s['acks']} acks (nothing finished)")


def run(
    runners: int = 500, clients: int = 2, hold_s: float = 0.0, root: Path | None = None, profile: str = ""
) -> Result:
    """One storm; see the module docstring. profile: py-spy the restarted controller into this file."""
    root = root or Path(tempfile.mkdtemp(prefix="dtask-storm-"))
    home = root / "home"
    certs_dir = make_certs(home / "certs", runners=())
    res = Result(runners, clients)
    names = [f"s{i}" for i in range(runners)]
    t0 = time.perf_counter()
    for n in names:
        certs.issue(certs_dir, Role.RUNNER, n)
    res.certs_s = time.perf_counter() - t0
    ports = free_port_range()
    ctl = start_controller(home, port_range=ports)
    fleets = Fleets(ctl.address, certs_dir, names, clients)
    try:
        fleets.send("floor")
        floors = fleets.gather("floor", 120)
        res.floor_s = max(f[2] for f in floors) - min(f[1] for f in floors)
        fleets.send("watch", 0.0)
        fleets.send("connect")
        fleets.gather("back", 120)
        with sync_channel(ctl.address, tls(certs_dir, "operator")) as ch:
            controller_pb2_grpc.ControllerStub(ch).SubmitTasks(
                pb.SubmitTasksRequest(
                    tasks=[cpb.TaskSpec(name=f"long{i}", shell="sleep 1000000", max_retries=3) for i in range(runners)]
                ),
                timeout=60,
            )
        held = {name: (tid, att) for f in fleets.gather("assigned", 120) for name, (tid, att) in f[1].items()}
        original = {tid: (name, att) for name, (tid, att) in held.items()}
        if len(original) != runners:
            res.problems.append(f"{runners} runners hold {len(original)} distinct attempts")

        ctl.kill9()
        killed = time.monotonic()
        fleets.send("watch", killed)
        ctl = start_controller(home, port_range=ports)
        listening = time.monotonic()
        res.listen_s = listening - killed
        proc = psutil.Process(ctl.popen.pid)
        clients_cpu = [psutil.Process(p.pid) for p in fleets.procs]
        res.cpu_start_s = sum(proc.cpu_times()[:2])
        client0 = sum(sum(c.cpu_times()[:2]) for c in clients_cpu)
        peak = [proc.memory_info().rss]

        def sample() -> None:
            peak[0] = max(peak[0], proc.memory_info().rss)

        spy = None
        if profile:
            spy = subprocess.Popen(
                [
                    str(BIN / "py-spy"),
                    "record",
                    "-p",
                    str(ctl.popen.pid),
                    "-o",
                    profile,
                    "-f",
                    "raw",
                    "-r",
                    "200",
                    "--gil",
                    "--nonblocking",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        back = {name: v for b in fleets.gather("back", 120, tick=sample) for name, v in b[1].items()}
        res.cpu_storm_s = sum(proc.cpu_times()[:2]) - res.cpu_start_s
        res.client_cpu_s = sum(sum(c.cpu_times()[:2]) for c in clients_cpu) - client0
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(30)
        res.reconnect_s = sorted(up - killed for _hello, up in back.values())
        res.arrival_s = sorted(max(0.0, hello - listening) for hello, _up in back.values())
        res.served_s = sorted(up - hello for hello, up in back.values())
        res.all_s = res.reconnect_s[-1]
        res.dead_flaps = sum("dead: no message" in line for line in ctl.lines)
        fleets.send("stats")
        _check(res, ctl.address, certs_dir, original, [s[1] for s in fleets.gather("stats", 60)], killed)
        res.rss_mb.append((0.0, proc.memory_info().rss / 2**20))
        held_from = time.monotonic()
        while (now := time.monotonic()) < held_from + hold_s:  # usage keeps coming at 1 Hz from every runner
            sample()
            if now - held_from >= len(res.rss_mb) * hold_s / 6:
                res.rss_mb.append((now - held_from, proc.memory_info().rss / 2**20))
            time.sleep(0.05)  # the sampling period, not synchronisation
        if hold_s > 0:
            res.rss_mb.append((time.monotonic() - held_from, proc.memory_info().rss / 2**20))
        sample()
        res.peak_rss_mb = peak[0] / 2**20
        res.hwm_mb = _hwm_mb(ctl.popen.pid)
        return res
    finally:
        fleets.close()
        ctl.stop()
        (root / "controller.log").write_text("".join(ctl.lines))


def report(r: Result) -> str:
    rows = [
        ("runners (client processes)", f"{r.runners} ({r.clients})"),
        (f"issue {r.runners} runner certificates", f"{r.certs_s:.2f} s"),
        (f"floor: {r.runners} fresh mTLS connections + WhoAmI", f"{r.floor_s:.2f} s"),
        ("kill -9 and restart -> listening", f"{r.listen_s:.2f} s"),
        (f"restart -> all {r.runners} back and reconciled", f"{r.all_s:.2f} s"),
        ("listening -> all reconciled / floor", f"{r.all_s - r.listen_s:.2f} s = {r.ratio:.2f}x floor"),
        ("reconnected after restart p50 / p90 / max", spread(r.reconnect_s)),
        ("  its last attempt began, after listening", spread(r.arrival_s)),
        ("  that attempt -> Welcome (TLS, Hello, reconcile)", spread(r.served_s)),
        ("failed connection attempts while down", f"{r.retries} ({r.retries / max(1, r.runners):.1f} per runner)"),
        ("controller peak RSS (sampled / VmHWM)", f"{r.peak_rss_mb:.0f} / {r.hwm_mb:.0f} MiB"),
        ("controller RSS after the storm (s: MiB)", ", ".join(f"{t:.0f}: {m:.0f}" for t, m in r.rss_mb)),
        (
            "CPU: controller start / storm; clients storm",
            f"{r.cpu_start_s:.2f} / {r.cpu_storm_s:.2f}; {r.client_cpu_s:.2f} s",
        ),
        ("reconciled (RUNNING, same runner, same attempt)", f"{r.reconciled}/{r.runners}"),
        ("executors shown dead meanwhile / sessions again", f"{r.dead_flaps} / {r.extra_sessions}"),
        ("problems", "; ".join(r.problems) or "none"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runners", type=int, default=500, help="simulated runners (and long tasks)")
    ap.add_argument("--clients", type=int, default=2, help="client processes the runners are spread over")
    ap.add_argument(
        "--hold",
        type=float,
        default=70.0,
        help="seconds to watch the controller's RSS after the storm (usage history fills in 60 s at 1 Hz; 0: skip)",
    )
    ap.add_argument(
        "--profile",
        default="",
        help="py-spy (pip install py-spy) the restarted controller during the storm; collapsed stacks to this file",
    )
    args = ap.parse_args()
    r = run(args.runners, args.clients, args.hold, profile=args.profile)
    print(
        f"reconnect storm: {r.runners} runners each holding a running attempt; controller kill -9, restart on "
        "the same store and port"
    )
    print(report(r))


if __name__ == "__main__":
    main()
