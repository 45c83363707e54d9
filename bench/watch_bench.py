"""Watch benchmark: the controller's CPU per task when a client waits with Controller.wait() (Watch)
beside waiting by polling IsFinished, for /bin/true tasks through a controller and 2 runners (1 slot each).

--watchers K adds K raw Watch streams (read, not converted: the controller's side of a TUI).
CPU seconds come from the controller process itself (user + system), so they are steadier than wall
time on a shared machine. --profile FILE runs the controller under cProfile (stats written on exit).

Run from the repository root: .venv/bin/python -m bench.watch_bench [--tasks 2000] [--rounds 2] [--watchers 0] [--profile F]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import grpc
import psutil
from dtask.v1 import controller_pb2 as pb
from dtask.v1 import controller_pb2_grpc
from dtask_client import Controller
from dtask_common.models import TaskSpec, TaskState

from bench.cluster import start_controller, start_runners
from tests.support import make_certs, sync_channel, tls


def raw_watchers(address: str, certs: Path, k: int) -> list[grpc.Channel]:
    """k Watch streams read in threads until their channel closes; counts nothing, converts nothing."""
    channels = []
    for _ in range(k):
        ch = sync_channel(address, tls(certs, "viewer"))
        stream = controller_pb2_grpc.ControllerStub(ch).Watch(pb.WatchRequest(exclude_usage=True))

        def drain(stream: object = stream) -> None:
            try:
                for _ in stream:  # type: ignore[attr-defined]
                    pass
            except grpc.RpcError:
                pass

        threading.Thread(target=drain, daemon=True).start()
        channels.append(ch)
    return channels


def cpu(p: psutil.Process) -> float:
    t = p.cpu_times()
    return t.user + t.system


def run_round(c: Controller, ctl: psutil.Process, n: int, how: str, tag: str) -> tuple[float, float, float]:
    """(wall s, controller CPU s, client CPU s) for n tasks waited on by `how` (wait or poll)."""
    specs = [TaskSpec(name=f"{tag}{i}", argv=("/bin/true",)) for i in range(n)]
    c0, k0, t0 = cpu(ctl), time.process_time(), time.perf_counter()
    ids = c.submit(specs)
    if how == "wait":
        tasks = c.wait(ids, timeout=600)
    else:
        while not c.finished():
            time.sleep(0.01)
        wanted = set(ids)
        tasks = [t for t in c.tasks() if t.id in wanted]
    wall = time.perf_counter() - t0
    bad = [t.id for t in tasks if t.state is not TaskState.SUCCEEDED]
    assert not bad and len(tasks) == n, f"{len(bad)} tasks not succeeded"
    return wall, cpu(ctl) - c0, time.process_time() - k0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tasks", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--watchers", type=int, default=0, help="extra raw Watch streams")
    ap.add_argument("--profile", default="", help="write the controller's cProfile stats to this file")
    ap.add_argument("--only", choices=("wait", "poll"), default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        home = Path(d) / "home"
        make_certs(home / "certs")
        ctl = start_controller(home, profile=args.profile)
        runners = start_runners(ctl, home, 1)
        try:
            proc = psutil.Process(ctl.popen.pid)
            extra = raw_watchers(ctl.address, home / "certs", args.watchers)
            with Controller(ctl.address, certs=home / "certs", timeout=60) as c:
                run_round(c, proc, 20, "wait", "warm")
                for r in range(args.rounds):
                    for how in ("wait", "poll"):
                        if args.only and how != args.only:
                            continue
                        wall, ccpu, kcpu = run_round(c, proc, args.tasks, how, f"{how}{r}-")
                        print(
                            f"{how:4} {args.tasks} tasks: {wall:.2f} s ({args.tasks / wall:.0f} tasks/s); "
                            f"controller CPU {1000 * ccpu / args.tasks:.3f} ms/task, "
                            f"client CPU {1000 * kcpu / args.tasks:.3f} ms/task",
                            flush=True,
                        )
            for ch in extra:
                ch.close()
        finally:
            for p in [*runners, ctl]:
                p.stop()


if __name__ == "__main__":
    main()
