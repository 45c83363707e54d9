"""The peer benchmark's three workloads on task-spooler (`tsp`), with a private server socket and output folder."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Tsp:
    """One private task-spooler server (its own socket and TMPDIR), started on first use, killed by close()."""

    binary: str
    root: Path

    @property
    def env(self) -> dict[str, str]:
        return dict(
            os.environ,
            TS_SOCKET=str(self.root / "socket"),
            TMPDIR=str(self.root),
            TS_MAXFINISHED="100000",
            TS_SLOTS="2",
        )

    def run(self, *args: str) -> str:
        return subprocess.run([self.binary, *args], env=self.env, capture_output=True, text=True, check=True).stdout

    def add(self, *argv: str) -> str:
        return self.run(*argv).strip()

    def wait(self, job: str) -> None:
        self.run("-w", job)

    def close(self) -> None:
        subprocess.run([self.binary, "-K"], env=self.env, capture_output=True)


def workloads(binary: str, tasks: int, latency: int, printer: list[str], mb: int) -> dict[str, object]:
    """(a) tasks/s of `tasks` /bin/true jobs on 2 slots, (b) submit -> done latency of `latency` single jobs (ms),
    (c) MB/s of one job printing mb MiB, its output file read whole."""
    with tempfile.TemporaryDirectory(prefix="dtask-peers-tsp-") as d:
        ts = Tsp(binary, Path(d))
        try:
            ts.run("-S", "2")
            for job in [ts.add("/bin/true") for _ in range(20)]:
                ts.wait(job)
            ts.run("-C")
            t0 = time.perf_counter()
            jobs = [ts.add("/bin/true") for _ in range(tasks)]
            for job in jobs:  # wait for each (most are long done when the last one is)
                ts.wait(job)
            took = time.perf_counter() - t0
            ts.run("-C")
            lat = []
            for _ in range(latency):
                t = time.perf_counter()
                ts.wait(ts.add("/bin/true"))
                lat.append((time.perf_counter() - t) * 1000)
            ts.run("-C")
            t0 = time.perf_counter()
            job = ts.add(*printer)
            ts.wait(job)
            fetched = len(Path(ts.run("-o", job).strip()).read_bytes())
            big = time.perf_counter() - t0
        finally:
            ts.close()
    return {"tasks_s": tasks / took, "latency_ms": lat, "mb_s": mb / big, "fetched": fetched}
