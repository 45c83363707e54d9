"""Runner benchmarks: end-to-end throughput of /bin/true tasks through a controller and 2 runners
(1 slot each) beside `xargs -P 2` on the same machine in the same run, and the output throughput
of one task printing 200 MB (through the whole system, and through the launcher alone).

The /bin/true figure waits as a user does (Controller.wait, which follows Watch); three more figures
show the client's share (waiting by polling IsFinished instead), 2 runners x 2 slots, and 2 runners x 1 slot
that each take one assignment ahead (runner.prefetch = 1). The machine's CPU per task is split into the
controller's, the runners', the client's (this process) and the rest, beside what 0.6x xargs would leave; a
second floor runs xargs through the gate's shell each attempt's first process is (sh -c 'exec /bin/true').

With --metrics the controller and the runners serve /metrics, each scraped once a second meanwhile.

Run from the repository root: .venv/bin/python -m bench.runner_bench [--tasks 2000] [--mb 200] [--metrics]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import psutil
from dtask_client import Controller
from dtask_common.models import TaskSpec, TaskState

from bench.cluster import cluster, cpu_s, start_runners
from tests.support import Proc, make_certs

PRINTER = "import sys\nline = (b'x' * 1023 + b'\\n') * 1024\nfor _ in range({mb}):\n    sys.stdout.buffer.write(line)\n"


METRICS_RE = r"metrics at http://(\S+)/metrics"


class Scraper:
    """Scrapes each address's /metrics once a second in a thread, as Prometheus would."""

    def __init__(self, addresses: list[str]):
        self.scrapes = 0
        self._stop = threading.Event()
        self._addresses = addresses
        self._thread = threading.Thread(target=self._run, daemon=True)
        if addresses:
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            for a in self._addresses:
                with contextlib.suppress(OSError), urllib.request.urlopen(f"http://{a}/metrics", timeout=5) as r:
                    r.read()
                    self.scrapes += 1

    def stop(self) -> None:
        self._stop.set()
        if self._addresses:
            self._thread.join(10)


def xargs_floor(n: int, parallel: int = 2, command: str = "/bin/true") -> float:
    t0 = time.perf_counter()
    subprocess.run(f"seq {n} | xargs -P {parallel} -n 1 {command}", shell=True, check=True)
    return time.perf_counter() - t0


def busy_s() -> float:
    """CPU seconds this machine has spent on anything but idling and waiting for I/O (every core, psutil)."""
    t = psutil.cpu_times()
    return sum(t) - t.idle - getattr(t, "iowait", 0.0)


def own_cpu_s() -> float:
    """This process's CPU seconds (the client's: its wait() reads the event stream)."""
    t = psutil.Process().cpu_times()
    return t.user + t.system


def cpu_seconds(procs: list[Proc]) -> float:
    """The CPU time (user + system, every thread) the runner processes and their watchdogs used so far."""
    total = 0.0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(p.popen.pid)
            for q in [root, *root.children()]:
                if q is root or "dtask_runner.watchdog" in " ".join(q.cmdline()):
                    t = q.cpu_times()
                    total += t.user + t.system
    return total


def through_system(c: Controller, specs: list[TaskSpec], timeout: float) -> tuple[float, list[str]]:
    t0 = time.perf_counter()
    ids = c.submit(specs)
    tasks = c.wait(ids, timeout=timeout)
    took = time.perf_counter() - t0
    bad = [t.id for t in tasks if t.state is not TaskState.SUCCEEDED]
    return took, bad


def through_system_polling(c: Controller, specs: list[TaskSpec], timeout: float) -> tuple[float, list[str]]:
    """Like through_system, but waiting by polling IsFinished every 10 ms (a client that costs little)."""
    t0 = time.perf_counter()
    ids = set(c.submit(specs))
    deadline = t0 + timeout
    while not c.finished() and time.perf_counter() < deadline:
        time.sleep(0.01)
    took = time.perf_counter() - t0
    bad = [t.id for t in c.tasks() if t.id in ids and t.state is not TaskState.SUCCEEDED]
    return took, bad


def launcher_alone(mb: int, tmp: Path) -> float:
    from dtask_runner.attempt_request import AttemptRequest
    from dtask_runner.launcher import Launcher

    class Sink:
        def on_output(self, execution: object) -> None:
            pass

        def on_progress(self, execution: object, progress: object) -> None:
            pass

    async def main() -> float:
        launcher = Launcher(tmp / "logs", tmp / "work")
        try:
            t0 = time.perf_counter()
            r = await launcher.start(
                AttemptRequest("big", 1, TaskSpec(argv=(sys.executable, "-c", PRINTER.format(mb=mb)))), Sink()
            ).done
            assert r.state is TaskState.SUCCEEDED, r.error
            return time.perf_counter() - t0
        finally:
            await launcher.close()

    return asyncio.run(main())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tasks", type=int, default=2000)
    ap.add_argument("--mb", type=int, default=200)
    ap.add_argument("--metrics", action="store_true", help="serve /metrics and scrape every endpoint once a second")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        home = Path(d) / "home"
        make_certs(home / "certs")
        ctl, runners = cluster(home, metrics=args.metrics)
        scraper = Scraper([p.wait_for(METRICS_RE).group(1) for p in [ctl, *runners]] if args.metrics else [])
        try:
            with Controller(ctl.address, certs=home / "certs", timeout=60) as c:
                # warm up both runners
                through_system(c, [TaskSpec(name=f"warm{i}", argv=("/bin/true",)) for i in range(20)], 60)
                floor = xargs_floor(args.tasks)
                # The first process of an attempt is a shell at the cgroup gate that execs the task: the floor
                # through the same shell shows what that costs without any of dtask.
                gate_busy0 = busy_s()
                gated = xargs_floor(args.tasks, command="/bin/sh -c 'exec /bin/true'")
                gate_busy = busy_s() - gate_busy0
                specs = [TaskSpec(name=f"true{i}", argv=("/bin/true",)) for i in range(args.tasks)]
                cpu0, ctl0, client0, busy0 = cpu_seconds(runners), cpu_s(ctl.popen.pid), own_cpu_s(), busy_s()
                took, bad = through_system(c, specs, 600)
                runner_cpu = cpu_seconds(runners) - cpu0
                ctl_cpu = cpu_s(ctl.popen.pid) - ctl0
                client_cpu, busy = own_cpu_s() - client0, busy_s() - busy0
                floor2 = xargs_floor(args.tasks)
                polled, bad2 = through_system_polling(
                    c, [TaskSpec(name=f"polled{i}", argv=("/bin/true",)) for i in range(args.tasks)], 600
                )
                print(
                    f"{args.tasks} /bin/true tasks, controller + 2 runners x 1 slot: {took:.2f} s "
                    f"({args.tasks / took:.0f} tasks/s){'; NOT OK: ' + str(len(bad)) if bad else ''}"
                )
                best = min(floor, floor2)
                print(
                    f"seq {args.tasks} | xargs -P 2 -n 1 /bin/true (floor, before/after): {floor:.2f} s / "
                    f"{floor2:.2f} s ({args.tasks / best:.0f} tasks/s); dtask/xargs time ratio {took / best:.1f}x"
                )
                print(
                    f"  the runners' own CPU (2 runners and their watchdogs, psutil): {runner_cpu:.2f} s, "
                    f"{runner_cpu * 1000 / args.tasks:.2f} ms per task; xargs's wall per task {best * 1000 / args.tasks:.2f} ms"
                )
                print(
                    f"  controller CPU per task: {1000 * ctl_cpu / args.tasks:.2f} ms "
                    f"({100 * ctl_cpu / took:.0f}% of one core while the {args.tasks} ran)"
                )
                ms = 1000 / args.tasks
                cores = psutil.cpu_count() or 1
                rest = busy - runner_cpu - ctl_cpu - client_cpu
                print(
                    f"  machine CPU per task: {busy * ms:.2f} ms = controller {ctl_cpu * ms:.2f} + runners "
                    f"{runner_cpu * ms:.2f} + client {client_cpu * ms:.2f} + the rest {rest * ms:.2f} (the tasks, "
                    f"their gate shells, the kernel, other load); 0.6x xargs ({0.6 * args.tasks / best:.0f} tasks/s) "
                    f"leaves {1000 * cores * best / (0.6 * args.tasks):.2f} ms on {cores} cores"
                )
                print(
                    f"  xargs -P 2 through the gate's shell (sh -c 'exec /bin/true'): {gated:.2f} s "
                    f"({args.tasks / gated:.0f} tasks/s, {gated / best:.2f}x the floor's time; machine CPU "
                    f"{gate_busy * ms:.2f} ms per task)"
                )
                print(
                    f"  the same, waiting by polling IsFinished instead of wait(): {polled:.2f} s "
                    f"({args.tasks / polled:.0f} tasks/s, ratio {polled / best:.1f}x)"
                    f"{'; NOT OK: ' + str(len(bad2)) if bad2 else ''}"
                )
                t0 = time.perf_counter()
                subprocess.run(
                    [sys.executable, "-c", PRINTER.format(mb=args.mb)], stdout=subprocess.DEVNULL, check=True
                )
                raw = time.perf_counter() - t0
                took, bad = through_system(
                    c, [TaskSpec(name="printer", argv=(sys.executable, "-c", PRINTER.format(mb=args.mb)))], 600
                )
                print(
                    f"one task printing {args.mb} MB through controller + runner: {took:.2f} s "
                    f"({args.mb / took:.0f} MB/s){'; NOT OK' if bad else ''}; the printer alone into /dev/null: "
                    f"{raw:.2f} s"
                )
                for p in runners:
                    p.stop()
                runners = start_runners(ctl, home, 2)
                through_system(c, [TaskSpec(name=f"warm2-{i}", argv=("/bin/true",)) for i in range(20)], 60)
                took, bad = through_system(
                    c, [TaskSpec(name=f"two{i}", argv=("/bin/true",)) for i in range(args.tasks)], 600
                )
                floor4 = xargs_floor(args.tasks, 4)
                print(
                    f"{args.tasks} /bin/true tasks, controller + 2 runners x 2 slots: {took:.2f} s "
                    f"({args.tasks / took:.0f} tasks/s){'; NOT OK: ' + str(len(bad)) if bad else ''}; "
                    f"xargs -P 4: {floor4:.2f} s, ratio {took / floor4:.1f}x"
                )
                for p in runners:
                    p.stop()
                runners = start_runners(ctl, home, 1, settings=("runner.prefetch=1",))
                through_system(c, [TaskSpec(name=f"warm3-{i}", argv=("/bin/true",)) for i in range(20)], 60)
                took, bad = through_system(
                    c, [TaskSpec(name=f"ahead{i}", argv=("/bin/true",)) for i in range(args.tasks)], 600
                )
                floor5 = xargs_floor(args.tasks)
                print(
                    f"{args.tasks} /bin/true tasks, controller + 2 runners x 1 slot, runner.prefetch = 1: {took:.2f} s "
                    f"({args.tasks / took:.0f} tasks/s){'; NOT OK: ' + str(len(bad)) if bad else ''}; "
                    f"xargs -P 2: {floor5:.2f} s, ratio {took / floor5:.1f}x"
                )
        finally:
            if scraper.scrapes:
                print(f"  /metrics scraped {scraper.scrapes} times meanwhile (once a second per endpoint)")
            scraper.stop()
            for p in [*runners, ctl]:
                p.stop()
        alone = launcher_alone(args.mb, Path(d))
        print(
            f"one task printing {args.mb} MB through the launcher alone (log file, parsers): {alone:.2f} s "
            f"({args.mb / alone:.0f} MB/s)"
        )


if __name__ == "__main__":
    main()
