"""The benchmarks' cluster start-up: a controller on 127.0.0.1 (optionally under cProfile) and real runners."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from tests.support import BIN, LISTEN_RE, Proc, free_port_range, make_certs, start_dtask

# Generous liveness limits: a loaded, shared machine must not make a benchmark's runner dead or lost.
PATIENT = ("controller.dead_after_s=30", "controller.lost_after_s=60")


def start_controller(
    home: Path,
    *,
    settings: tuple[str, ...] = PATIENT,
    profile: str = "",
    port_range: tuple[int, int] | None = None,
) -> Proc:
    """`dtask controller` with DTASK_HOME=home on 127.0.0.1; profile: run it under cProfile, stats to that file."""
    lo, hi = port_range or free_port_range()
    args = [a for s in settings for a in ("--set", s)]
    args += ["controller", "--host", "127.0.0.1", "--port-range", f"{lo}-{hi}"]
    if not profile:
        return start_dtask(args, home)
    env = dict(os.environ, DTASK_HOME=str(home), PYTHONUNBUFFERED="1")
    env.pop("DTASK_CONFIG", None)
    popen = subprocess.Popen(
        [sys.executable, "-m", "cProfile", "-o", profile, str(BIN / "dtask"), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        start_new_session=True,
    )
    proc = Proc(popen)
    proc.start_reader()
    m = proc.wait_for(LISTEN_RE.pattern)
    proc.address = f"127.0.0.1:{m.group(2)}"
    return proc


def start_runners(
    ctl: Proc,
    home: Path,
    slots: int,
    names: tuple[str, ...] = ("r1", "r2"),
    settings: tuple[str, ...] = (),
    extra: tuple[str, ...] = (),
) -> list[Proc]:
    """One `dtask runner` per name (certificates in home/certs, `--set` settings, extra flags added), each waited for until it is
    connected."""
    runners = []
    for name in names:
        lo, hi = free_port_range()
        args = [a for st in settings for a in ("--set", st)]
        args += ["runner", "--controller", ctl.address, "--name", name, "--slots", str(slots)]
        p = start_dtask([*args, "--host", "127.0.0.1", "--port-range", f"{lo}-{hi}", *extra], home)
        p.wait_for(rf"connected to controller .* as {name}")
        runners.append(p)
    return runners


def cluster(home: Path, slots: int = 1, metrics: bool = False) -> tuple[Proc, list[Proc]]:
    """A controller and 2 runners (r1, r2) of `slots` slots each; certificates must be in home/certs. metrics:
    each serves /metrics on a free port of 127.0.0.1."""
    if not metrics:
        ctl = start_controller(home)
        return ctl, start_runners(ctl, home, slots)
    ctl = start_controller(home, settings=(*PATIENT, "controller.metrics_address=127.0.0.1:0"))
    return ctl, start_runners(ctl, home, slots, extra=("--metrics-address", "0"))


def cpu_s(pid: int) -> float:
    """User + system CPU seconds the process has used so far."""
    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


def rss_bytes(pid: int) -> int:
    return int(psutil.Process(pid).memory_info().rss)


@dataclass
class Cluster:
    """A running controller and its runners in a temporary DTASK_HOME (certificates made there)."""

    home: Path
    controller: Proc
    runners: list[Proc] = field(default_factory=list)

    @property
    def certs(self) -> Path:
        return self.home / "certs"

    def stop(self) -> None:
        for p in [*self.runners, self.controller]:
            p.stop()


@contextlib.contextmanager
def temporary_cluster(slots: int = 1, runners: int = 2) -> Iterator[Cluster]:
    """A controller and `runners` runners (r1, r2, ...) in a fresh temporary home, stopped on exit."""
    names = tuple(f"r{i + 1}" for i in range(runners))
    with tempfile.TemporaryDirectory(prefix="dtask-bench-") as d:
        home = Path(d) / "home"
        make_certs(home / "certs", runners=names)
        c = Cluster(home, start_controller(home))
        try:
            c.runners = start_runners(c.controller, home, slots, names)
            yield c
        finally:
            c.stop()
