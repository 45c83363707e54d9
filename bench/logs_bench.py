"""Whole-output benchmark: one task printing MB megabytes through a controller and a runner, then `dtask logs ID >
file`, checked byte-exact (sha256) against the same printer run inline (`subprocess.run(..., stdout=file)`, the
floor) in the same run; MB/s of the whole (run + fetch), of the fetch alone, and their ratios to the floor; the
peak RSS of `dtask logs` and of the controller while it streams (constant memory whatever the size).

The fetch floors beside it: `dtask --version` (what a dtask command costs to start) and `cat` of the same bytes
into the file; and what 0.7x the floor leaves for the fetch after the run.

Run from the repository root: .venv/bin/python -m bench.logs_bench [--mb 200] [--rounds 1]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
from dtask_client import Controller
from dtask_common.models import TaskSpec, TaskState

from tests.support import BIN, Proc, free_port_range, make_certs, start_dtask

# Pseudo-random (incompressible, not a repeated line) and the same bytes on every run.
PRINTER = (
    "import random, sys\nr = random.Random(7)\nout = sys.stdout.buffer\n"
    "for _ in range({mb}):\n    out.write(r.randbytes(1 << 20))\n"
)
MB = 1 << 20


def start_cluster(home: Path) -> tuple[Proc, Proc]:
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
    rlo, rhi = free_port_range()
    runner = start_dtask(
        ["runner", "--controller", ctl.address, "--name", "r1", "--host", "127.0.0.1", "--port-range", f"{rlo}-{rhi}"],
        home,
    )
    runner.wait_for(r"connected to controller .* as r1")
    return ctl, runner


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(4 * MB):
            h.update(block)
    return h.hexdigest()


def timed(argv: list[str], out: Path | None = None) -> float:
    """Seconds argv takes with its stdout into out (None: /dev/null)."""
    t0 = time.perf_counter()
    with (out or Path(os.devnull)).open("wb") as f:
        subprocess.run(argv, stdout=f, check=True)
    return time.perf_counter() - t0


def inline_floor(argv: list[str], out: Path) -> float:
    t0 = time.perf_counter()
    with out.open("wb") as f:
        subprocess.run(argv, stdout=f, check=True)
    return time.perf_counter() - t0


class PeakRss:
    """The peak RSS of a process, sampled every 20 ms in a thread until stopped."""

    def __init__(self, pid: int):
        self.proc = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            try:
                self.peak = max(self.peak, self.proc.memory_info().rss)
            except psutil.Error:
                return

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(5)
        return self.peak


def cpu_s(*procs: Proc) -> list[float]:
    """CPU seconds (user + system) each process used so far (its threads included)."""
    return [sum(psutil.Process(p.popen.pid).cpu_times()[:2]) for p in procs]


def fetch(home: Path, address: str, tid: str, out: Path) -> tuple[float, int, str, float]:
    """`dtask logs tid > out`: seconds, its peak RSS (bytes, from wait4), its stderr and its CPU seconds."""
    env = dict(os.environ, DTASK_HOME=str(home), DTASK_CONTROLLER=address)
    env.pop("DTASK_CONFIG", None)
    t0 = time.perf_counter()
    with out.open("wb") as f:
        p = subprocess.Popen([str(BIN / "dtask"), "logs", tid], env=env, stdout=f, stderr=subprocess.PIPE)
        assert p.stderr is not None
        err = p.stderr.read()
        _pid, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
    took = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"dtask logs failed ({p.returncode}): {err.decode(errors='replace')}")
    return took, usage.ru_maxrss * 1024, err.decode(errors="replace"), usage.ru_utime + usage.ru_stime


def one_round(c: Controller, ctl: Proc, runner: Proc, home: Path, mb: int, tmp: Path) -> dict[str, float]:
    argv = [sys.executable, "-c", PRINTER.format(mb=mb)]
    floor_out, out = tmp / "floor.out", tmp / "dtask.out"
    floor = inline_floor(argv, floor_out)
    cpu0 = cpu_s(ctl, runner)
    t0 = time.perf_counter()
    [tid] = c.submit(TaskSpec(name="printer", argv=tuple(argv)))
    [task] = c.wait([tid], timeout=600)
    ran = time.perf_counter() - t0
    assert task.state is TaskState.SUCCEEDED, task.error
    cpu1 = cpu_s(ctl, runner)
    ctl_rss = PeakRss(ctl.popen.pid)
    ctl_before = ctl_rss.proc.memory_info().rss
    took, cli_rss, err, cli_cpu = fetch(home, ctl.address, tid, out)
    ctl_peak = ctl_rss.stop()
    cpu2 = cpu_s(ctl, runner)
    exact = out.stat().st_size == floor_out.stat().st_size and sha256(out) == sha256(floor_out)
    floor2 = inline_floor(argv, floor_out)
    # What any fetch by a `dtask` command pays before it streams a byte, and for writing the bytes into the file.
    startup = min(timed([str(BIN / "dtask"), "--version"]) for _ in range(3))
    copy = timed(["cat", str(floor_out)], out)
    for p in (out, floor_out):
        p.unlink()
    return {
        "floor_s": min(floor, floor2),
        "run_s": ran,
        "fetch_s": took,
        "whole_s": ran + took,
        "exact": float(exact and not err),
        "cli_rss_mb": cli_rss / MB,
        "ctl_rss_before_mb": ctl_before / MB,
        "ctl_rss_peak_mb": ctl_peak / MB,
        "run_cpu_ctl": cpu1[0] - cpu0[0],
        "run_cpu_runner": cpu1[1] - cpu0[1],
        "fetch_cpu_ctl": cpu2[0] - cpu1[0],
        "fetch_cpu_runner": cpu2[1] - cpu1[1],
        "fetch_cpu_cli": cli_cpu,
        "startup_s": startup,
        "copy_s": copy,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--mb", type=int, default=200, help="megabytes (MiB) the task prints")
    ap.add_argument("--rounds", type=int, default=1, help="rounds in the same cluster (each with its own floor)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        home = tmp / "home"
        make_certs(home / "certs")
        ctl, runner = start_cluster(home)
        try:
            with Controller(ctl.address, certs=home / "certs", timeout=60) as c:
                c.wait([c.add_task("echo warm")], timeout=60)
                for i in range(args.rounds):
                    r = one_round(c, ctl, runner, home, args.mb, tmp)
                    mbs = args.mb  # MiB, shown as MB/s of MiB
                    print(
                        f"round {i + 1}: {args.mb} MiB printed by one task, `dtask logs ID > file` "
                        f"{'byte-exact (sha256)' if r['exact'] else 'NOT BYTE-EXACT'}\n"
                        f"  inline floor (subprocess.run(..., stdout=file)): {r['floor_s']:.2f} s "
                        f"= {mbs / r['floor_s']:.0f} MB/s\n"
                        f"  whole through dtask (run {r['run_s']:.2f} s + fetch {r['fetch_s']:.2f} s): "
                        f"{r['whole_s']:.2f} s = {mbs / r['whole_s']:.0f} MB/s, "
                        f"{r['floor_s'] / r['whole_s']:.2f}x the floor\n"
                        f"  fetch alone: {mbs / r['fetch_s']:.0f} MB/s, {r['floor_s'] / r['fetch_s']:.2f}x the floor\n"
                        f"  fetch floors: `dtask --version` {r['startup_s']:.2f} s (start-up); `cat` of the same bytes "
                        f"into the file {r['copy_s']:.2f} s; 0.7x the floor leaves "
                        f"{r['floor_s'] / 0.7 - r['run_s']:.2f} s for the fetch after this run\n"
                        f"  peak RSS: dtask logs {r['cli_rss_mb']:.0f} MB; controller {r['ctl_rss_before_mb']:.0f} "
                        f"-> {r['ctl_rss_peak_mb']:.0f} MB while streaming\n"
                        f"  CPU seconds: run: runner {r['run_cpu_runner']:.2f}, controller {r['run_cpu_ctl']:.2f}; "
                        f"fetch: runner {r['fetch_cpu_runner']:.2f}, controller {r['fetch_cpu_ctl']:.2f}, "
                        f"dtask logs {r['fetch_cpu_cli']:.2f}"
                    )
        finally:
            runner.stop()
            ctl.stop()


if __name__ == "__main__":
    main()
