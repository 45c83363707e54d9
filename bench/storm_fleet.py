"""Simulated runners for the reconnect-storm benchmark: the runner's real ControllerSession (Hello, backoff, jitter,
reconnects) per runner over its own mTLS certificate, with a core that pretends to run what it is assigned.

One fleet is one process (started by bench.storm_bench with multiprocessing); it takes commands on one pipe
and reports on another, all times in time.monotonic() (one clock for every process of the machine).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import grpc
from dtask.v1 import controller_pb2 as pb
from dtask.v1 import controller_pb2_grpc
from dtask_common import PROTOCOL_VERSION, __version__
from dtask_common.models import (
    AttemptResult,
    Capacity,
    Hello,
    MetricPoint,
    Progress,
    RunningAttempt,
    TaskState,
    UsageSample,
)
from dtask_common.server import client_options
from dtask_common.tls import TlsFiles, channel_credentials
from dtask_runner.attempt_request import AttemptRequest
from dtask_runner.controller_session import ControllerSession


@dataclass
class SimCore:
    """Stands in for dtask_runner.runner.Runner behind a real ControllerSession: one slot, attempts that never end."""

    name: str
    fleet: Fleet
    instance_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    running: dict[tuple[str, int], float] = field(default_factory=dict)
    assigns: list[tuple[str, int]] = field(default_factory=list)
    cancels: list[tuple[str, int, str]] = field(default_factory=list)
    acks: int = 0
    hellos: list[float] = field(default_factory=list)  # when each connection attempt began (made its Hello)
    ups: list[float] = field(default_factory=list)  # when each session was welcomed
    usage_interval_s: float = 1.0
    session: ControllerSession | None = None
    finish_at_once: bool = False  # report each assignment succeeded as soon as it comes (for dispatch rates)
    reporter: asyncio.Task[None] | None = None  # sends progress (and metric points) of its attempts, if asked

    def hello_info(self) -> Hello:
        self.hellos.append(time.monotonic())
        return Hello(
            name=self.name,
            address="",
            capacity=Capacity(slots=1, cpus=1.0, memory_mb=1024),
            labels={},
            running=tuple(RunningAttempt(t, a, s) for (t, a), s in self.running.items()),
            unreported=(),
            draining=False,
            instance_id=self.instance_id,
            version=__version__,
            protocol_version=PROTOCOL_VERSION,
        )

    def on_welcome(self, usage_interval_s: float, output_tail_bytes: int = 0) -> None:
        if usage_interval_s > 0:
            self.usage_interval_s = usage_interval_s

    def resume_output(self, task_id: str, attempt: int, offset: int) -> None:
        pass

    def on_connected(self) -> None:
        self.ups.append(time.monotonic())
        if self.session is not None:  # as the runner does: the latest usage at once, then at the interval
            self.session.usage(self.sample())
        self.fleet.changed()

    def back_since(self, t: float) -> tuple[float, float] | None:
        """(attempt began, welcomed) of the first session welcomed after t."""
        up = next((u for u in self.ups if u > t), None)
        if up is None:
            return None
        return max(h for h in self.hellos if h <= up), up

    def on_assign(self, req: AttemptRequest) -> None:
        key = (req.task_id, req.attempt)
        self.assigns.append(key)
        if self.finish_at_once and self.session is not None:
            now = time.time()
            self.session.finished(
                AttemptResult(req.task_id, req.attempt, TaskState.SUCCEEDED, 0, started_at=now, finished_at=now)
            )
            return
        self.running[key] = time.time()
        if self.session is not None:  # what a started attempt sends first: its progress
            self.session.progress(req.task_id, req.attempt, Progress(label="sim", step=0, total=100))
        self.fleet.changed()

    def on_cancel(self, task_id: str, attempt: int, reason: str) -> None:
        self.cancels.append((task_id, attempt, reason))
        self.running.pop((task_id, attempt), None)

    def on_ack(self, task_id: str, attempt: int) -> None:
        self.acks += 1

    @staticmethod
    def sample() -> UsageSample:
        return UsageSample(at=time.time(), cpu_percent=50.0, per_cpu_percent=(50.0, 50.0), ram_percent=30.0)

    async def report_loop(self, hz: float, metrics: int) -> None:
        """Progress of every running attempt hz times a second, each report with one point of `metrics` metrics
        (as the runner sends a tqdm bar drawn faster than its rate limit, with that many postfix keys)."""
        await asyncio.sleep(random.random() / hz)
        step = 0
        while True:
            step += 1
            now = time.time()
            points = tuple(MetricPoint(f"m{j}", now, (step * (j + 1)) % 1000 / 7.0) for j in range(metrics))
            for task_id, attempt in list(self.running):
                if self.session is not None:
                    self.session.progress(
                        task_id, attempt, Progress(label="sim", step=step, total=10**6, updated_at=now), points
                    )
            await asyncio.sleep(1.0 / hz)

    def report(self, hz: float, metrics: int) -> None:
        if self.reporter is not None:
            self.reporter.cancel()
            self.reporter = None
        if hz > 0:
            self.reporter = asyncio.get_running_loop().create_task(self.report_loop(hz, metrics))

    async def usage_loop(self) -> None:
        await asyncio.sleep(random.random() * self.usage_interval_s)
        while True:
            if self.session is not None:
                self.session.usage(self.sample())
            await asyncio.sleep(self.usage_interval_s)


class _Counter(logging.Handler):
    """Counts the sessions' failed connection attempts and keeps their first errors (nothing is printed)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.retries = 0
        self.errors: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg == "reconnecting to %s in %.1f s":
            self.retries += 1
        elif record.levelno >= logging.ERROR and len(self.errors) < 5:
            self.errors.append(record.getMessage())


class Fleet:
    """Many simulated runners in one event loop."""

    def __init__(self, address: str, certs_dir: Path, names: list[str], events: Connection):
        self.address = address
        self.certs_dir = certs_dir
        self.cores = [SimCore(n, self) for n in names]
        self.events = events
        self.since: float | None = None
        self._reported_assigned = False
        self._tasks: list[asyncio.Task[Any]] = []
        self.counter = _Counter()
        log = logging.getLogger("dtask_runner.controller_session")
        log.addHandler(self.counter)
        log.setLevel(logging.INFO)
        log.propagate = False

    def files(self, name: str) -> TlsFiles:
        return TlsFiles.in_dir(self.certs_dir, f"runner-{name}")

    def watch(self, since: float) -> None:
        self.since = since
        self.changed()

    def changed(self) -> None:
        """Report once every runner here was welcomed after `since`, and once when each holds an assignment."""
        if self.since is not None:
            back = {c.name: c.back_since(self.since) for c in self.cores}
            if all(back.values()):
                self.since = None
                self.events.send(("back", back))
        if not self._reported_assigned and all(c.assigns for c in self.cores):
            self._reported_assigned = True
            self.events.send(("assigned", {c.name: c.assigns[0] for c in self.cores}))

    async def floor(self) -> None:
        """One fresh mTLS connection and one unary WhoAmI per runner certificate, all at once."""

        async def one(name: str) -> float:
            t0 = time.monotonic()
            async with grpc.aio.secure_channel(
                self.address, channel_credentials(self.files(name)), options=client_options()
            ) as ch:
                await controller_pb2_grpc.ControllerStub(ch).WhoAmI(pb.WhoAmIRequest(), timeout=60)
            return time.monotonic() - t0

        t0 = time.monotonic()
        took = await asyncio.gather(*(one(c.name) for c in self.cores))
        self.events.send(("floor", t0, time.monotonic(), list(took)))

    def connect(self) -> None:
        for c in self.cores:
            c.session = ControllerSession(c, self.address, self.files(c.name))  # type: ignore[arg-type]
            self._tasks += [asyncio.create_task(c.session.run()), asyncio.create_task(c.usage_loop())]

    def stats(self) -> None:
        self.events.send(
            (
                "stats",
                {
                    "assigns": {c.name: list(c.assigns) for c in self.cores},
                    "cancels": [(c.name, *x) for c in self.cores for x in c.cancels],
                    "acks": sum(c.acks for c in self.cores),
                    "sessions": {c.name: [round(u, 2) for u in c.ups] for c in self.cores},
                    "retries": self.counter.retries,
                    "errors": list(self.counter.errors),
                    "failed": [
                        f"{t.get_name()}: {t.exception()!r}"
                        for t in self._tasks
                        if t.done() and not t.cancelled() and t.exception() is not None
                    ][:5],
                },
            )
        )

    async def close(self) -> None:
        for c in self.cores:
            c.report(0, 0)
        for t in self._tasks:
            t.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for c in self.cores:
            if c.session is not None:
                await c.session.close()


async def _serve(fleet: Fleet, commands: Connection) -> None:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()

    def read() -> None:  # the pipe blocks: read it in a thread, hand each command to the loop
        while True:
            try:
                cmd = commands.recv()
            except EOFError:
                cmd = ("stop",)
            loop.call_soon_threadsafe(queue.put_nowait, cmd)
            if cmd[0] == "stop":
                return

    threading.Thread(target=read, daemon=True).start()
    while True:
        cmd = await queue.get()
        match cmd[0]:
            case "floor":
                await fleet.floor()
            case "connect":
                fleet.connect()
            case "finish":  # from now on every assignment succeeds at once
                for c in fleet.cores:
                    c.finish_at_once = True
            case "watch":
                fleet.watch(cmd[1])
            case "report":  # ("report", hz, metrics): progress of each running attempt hz a second (0: none)
                for c in fleet.cores:
                    c.report(cmd[1], cmd[2])
                fleet.events.send(("reporting",))
            case "stats":
                fleet.stats()
            case "stop":
                await fleet.close()
                fleet.events.send(("stopped",))
                return
            case other:
                raise ValueError(f"unknown fleet command {other!r}")


def main(address: str, certs_dir: str, names: list[str], commands: Connection, events: Connection) -> None:
    """The fleet process: serve commands until told to stop."""
    logging.basicConfig(level=logging.ERROR)
    asyncio.run(_serve(Fleet(address, Path(certs_dir), names, events), commands))
