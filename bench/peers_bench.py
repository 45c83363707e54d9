"""dtask beside its peers: the same three workloads on dtask, Ray and task-spooler, each against its floor.

(a) N /bin/true tasks on 2 slots, tasks/s (floor: `xargs -P 2`); (b) sequential single-task submit -> done
latency p50/p99 (floor: an inline subprocess.run); (c) one task printing --mb MiB, its output fetched whole,
MB/s (floor: an inline subprocess.run to a file, read back). dtask runs a controller and 2 runners x 1 slot
(bench/cluster.py) and is driven through the Python client: submit + wait(ids), submit + wait([id]),
submit + wait + logs(). Ray runs in its own environment (--ray PYTHON, made by `make bench-peers`),
task-spooler is the `tsp` binary (--tsp); a peer that is not installed is skipped and said so. The ratio is
how many times the floor's figure is better (1.0x: as fast as the floor).

Run from the repository root: make bench-peers [ARGS="--tasks 2000 --latency 300 --mb 50"], or
.venv/bin/python -m bench.peers_bench [--ray .bench-venv/bin/python] [--tsp tsp]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from dtask_client import Controller
from dtask_common.models import TaskSpec, TaskState

from bench import peers_tsp
from bench.cluster import temporary_cluster
from bench.runner_bench import PRINTER, xargs_floor

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Figures:
    """One system's three figures (None: not measured)."""

    tasks_s: float
    latency_ms: list[float]
    mb_s: float
    fetched: int = 0
    note: str = ""

    @classmethod
    def of(cls, d: dict[str, object]) -> Figures:
        return cls(float(d["tasks_s"]), list(d["latency_ms"]), float(d["mb_s"]), int(d["fetched"]))  # type: ignore[arg-type,call-overload]


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


def printer(mb: int) -> list[str]:
    return [sys.executable, "-c", PRINTER.format(mb=mb)]


def floors(tasks: int, latency: int, mb: int) -> Figures:
    took = xargs_floor(tasks)
    lat = []
    for _ in range(latency):
        t = time.perf_counter()
        subprocess.run(["/bin/true"], check=True)
        lat.append((time.perf_counter() - t) * 1000)
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "out"
        t0 = time.perf_counter()
        with out.open("wb") as f:
            subprocess.run(printer(mb), stdout=f, check=True)
        fetched = len(out.read_bytes())
        big = time.perf_counter() - t0
    return Figures(tasks / took, lat, mb / big, fetched)


def on_dtask(tasks: int, latency: int, mb: int) -> Figures:
    true = ("/bin/true",)
    with temporary_cluster(slots=1) as cl, Controller(cl.controller.address, certs=cl.certs, timeout=60) as c:
        c.wait(c.submit([TaskSpec(name=f"warm{i}", argv=true) for i in range(20)]), timeout=60)
        t0 = time.perf_counter()
        done = c.wait(c.submit([TaskSpec(name=f"true{i}", argv=true) for i in range(tasks)]), timeout=600)
        took = time.perf_counter() - t0
        bad = sum(t.state is not TaskState.SUCCEEDED for t in done)
        lat = []
        for i in range(latency):
            t = time.perf_counter()
            (one,) = c.wait(c.submit([TaskSpec(name=f"one{i}", argv=true)]), timeout=60)
            lat.append((time.perf_counter() - t) * 1000)
            bad += one.state is not TaskState.SUCCEEDED
        t0 = time.perf_counter()
        (tid,) = c.submit([TaskSpec(name="printer", argv=tuple(printer(mb)))])
        (big,) = c.wait([tid], timeout=600)
        fetched = sum(len(b) for b in c.logs(tid))
        took_big = time.perf_counter() - t0
        bad += big.state is not TaskState.SUCCEEDED
    return Figures(tasks / took, lat, mb / took_big, fetched, f"{bad} tasks did not succeed" if bad else "")


def on_ray(python: str, tasks: int, latency: int, mb: int) -> Figures | str:
    if not python or not Path(python).exists():
        return f"skipped: no Ray environment at {python or '(none given)'} (make bench-peers makes .bench-venv)"
    if subprocess.run([python, "-c", "import ray"], capture_output=True).returncode:
        return f"skipped: Ray is not installed in {python}"
    job = json.dumps({"tasks": tasks, "latency": latency, "mb": mb, "printer": [python, *printer(mb)[1:]]})
    p = subprocess.run([python, str(REPO / "bench" / "peers_ray.py"), job], capture_output=True, text=True)
    if p.returncode:
        return f"failed: {(p.stderr.strip().splitlines() or ['exit ' + str(p.returncode)])[-1]}"
    return Figures.of(json.loads(p.stdout.strip().splitlines()[-1]))


def on_tsp(binary: str, tasks: int, latency: int, mb: int) -> Figures | str:
    found = shutil.which(binary) if binary else None
    if not found:
        return f"skipped: no task-spooler binary {binary or '(none given)'} (Debian's package task-spooler: tsp)"
    return Figures.of(peers_tsp.workloads(found, tasks, latency, printer(mb), mb))


def table(tasks: int, latency: int, mb: int, floor: Figures, systems: dict[str, Figures | str]) -> str:
    rows = [
        ("system", f"(a) {tasks} x /bin/true, 2 slots", f"(b) {latency} x submit->done p50 / p99", f"(c) {mb} MB out"),
        (
            "floor",
            f"{floor.tasks_s:.0f} tasks/s (xargs -P 2)",
            f"{pct(floor.latency_ms, 0.5):.2f} / {pct(floor.latency_ms, 0.99):.2f} ms (subprocess.run)",
            f"{floor.mb_s:.0f} MB/s (subprocess.run > file)",
        ),
    ]
    notes = []
    for name, f in systems.items():
        if isinstance(f, str):
            rows.append((name, f, "", ""))
            continue
        p50, p99 = pct(f.latency_ms, 0.5), pct(f.latency_ms, 0.99)
        whole = "" if f.fetched == floor.fetched else f" [fetched {f.fetched / 2**20:.1f} of {mb} MB]"
        rows.append(
            (
                name,
                f"{f.tasks_s:.0f} tasks/s = {floor.tasks_s / f.tasks_s:.1f}x floor",
                f"{p50:.2f} / {p99:.2f} ms = {p50 / pct(floor.latency_ms, 0.5):.1f}x / "
                f"{p99 / pct(floor.latency_ms, 0.99):.1f}x floor",
                f"{f.mb_s:.0f} MB/s = {floor.mb_s / f.mb_s:.1f}x floor{whole}",
            )
        )
        if f.note:
            notes.append(f"{name}: {f.note}")
    widths = [max(len(r[i]) for r in rows if r[1:] != ("", "") or i == 0) for i in range(4)]
    lines = []
    for r in rows:
        if r[2:] == ("", ""):
            lines.append(f"  {r[0]:<{widths[0]}}  {r[1]}")
        else:
            lines.append("  " + "  ".join(f"{c:<{w}}" for c, w in zip(r, widths, strict=True)).rstrip())
    return "\n".join(lines + [f"  NOT OK: {n}" for n in notes])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", type=int, default=2000, help="(a): /bin/true tasks")
    ap.add_argument("--latency", type=int, default=300, help="(b): sequential single tasks")
    ap.add_argument("--mb", type=int, default=50, help="(c): MiB the one task prints")
    ap.add_argument("--ray", default=str(REPO / ".bench-venv" / "bin" / "python"), help="a Python with Ray")
    ap.add_argument("--tsp", default="tsp", help="the task-spooler binary")
    args = ap.parse_args()
    n, k, mb = args.tasks, args.latency, args.mb
    systems: dict[str, Figures | str] = {"dtask": on_dtask(n, k, mb)}
    systems["Ray"] = on_ray(args.ray, n, k, mb)
    systems["task-spooler"] = on_tsp(args.tsp, n, k, mb)
    floor = floors(n, k, mb)
    print("dtask and its peers on this machine, one run (ratio: how many times the floor is better)")
    print(table(n, k, mb, floor, systems))


if __name__ == "__main__":
    main()
