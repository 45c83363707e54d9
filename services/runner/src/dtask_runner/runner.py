"""The runner's core: accepts assignments, runs them, keeps results until acknowledged, samples usage."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field, replace
from pathlib import Path

import psutil
from dtask_common import PROTOCOL_VERSION, __version__, runner_paths
from dtask_common.config import Config
from dtask_common.metric_series import MetricSeries
from dtask_common.models import AttemptUsage, Capacity, Hello, MetricPoint, Progress, RunningAttempt, UsageSample

from dtask_runner.attempt_request import AttemptRequest, safe_stem
from dtask_runner.capacity import assignment_refusal, resend_rest
from dtask_runner.containment import open_containment
from dtask_runner.execution import Execution
from dtask_runner.journal import ResultJournal
from dtask_runner.launcher import Launcher
from dtask_runner.output import OutputPump, Throttle
from dtask_runner.retention import SWEEP_INTERVAL_S, Retention
from dtask_runner.taskuser import TaskUser, check_private, prepare_work_dir
from dtask_runner.uplink import Offline, Uplink
from dtask_runner.usage import GpuReader, UsageSampler, detect_gpus, open_gpu_reader

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 0.2
# Metric points of one metric per progress report at most (more are thinned, the first and the last kept).
POINTS_PER_REPORT = 16
SHUTDOWN_REPORT_S = 3.0


@dataclass
class _Attempt:
    execution: Execution
    pump: OutputPump
    throttle: Throttle = field(default_factory=lambda: Throttle(PROGRESS_INTERVAL_S))
    flush: asyncio.TimerHandle | None = None
    progress: Progress | None = None  # not sent yet
    metrics: MetricSeries = field(default_factory=lambda: MetricSeries(POINTS_PER_REPORT))  # not sent yet


class Runner:
    """Runs what the controller assigns; reports through an Uplink."""

    def __init__(self, cfg: Config, *, user: TaskUser | None = None):
        rc = cfg.runner
        self.name = rc.name
        self.controller = rc.controller
        self.state_dir = cfg.home_path / "runner" / rc.name
        self.log_dir = cfg.runner_log_dir()
        self.work_dir = Path(rc.work_dir).expanduser().absolute() if rc.work_dir else self.state_dir / "work"
        if user is not None:
            check_private(cfg.home_path, {cfg.certs_path: "the certificates", self.log_dir: "the attempt logs"}, user)
            prepare_work_dir(self.work_dir, cfg.home_path, user)
        self.gpu_reader: GpuReader | None = open_gpu_reader()
        gpus = detect_gpus(rc.gpus, self.gpu_reader)
        self.capacity = Capacity(
            slots=rc.slots,
            cpus=rc.cpus
            or float(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1),
            memory_mb=rc.memory_mb or psutil.virtual_memory().total // (1024 * 1024),
            gpus=gpus,
            prefetch=rc.prefetch,
        )
        self.labels = dict(rc.labels)
        self.paths = {name: os.path.expanduser(d) for name, d in rc.paths.items()}
        self.instance_id = uuid.uuid4().hex  # this process: it knows every attempt it was given
        self.usage_interval_s = rc.usage_interval_s
        self.output_tail_bytes = 0  # the controller's output tail, from its Welcome (0: not told)
        self.journal = ResultJournal(self.state_dir / "results")
        self.launcher = Launcher(
            self.log_dir,
            self.work_dir,
            kill_grace_s=rc.kill_grace_s,
            hide_gpus=bool(gpus),
            user=user,
            containment=open_containment(rc.containment, rc.name),
            placeholders=runner_paths.runner_values(
                str(self.work_dir), user.home if user is not None else os.path.expanduser("~"), self.paths
            ),
            task_env_path=os.path.expanduser(rc.task_env_path),
        )
        self.sampler = UsageSampler(self.gpu_reader)
        self.retention = Retention(
            self.log_dir, tuple(dict.fromkeys((self.log_dir, self.work_dir))), rc.log_retention_days, rc.log_max_bytes
        )
        self._sweeping = asyncio.Lock()
        self.last_usage: UsageSample | None = None
        self.draining = False
        self.address = ""
        self.uplink: Uplink = Offline()
        self._attempts: dict[tuple[str, int], _Attempt] = {}
        # Assignments beyond the slots (up to capacity.prefetch), in order, with when each came: the next
        # starts the moment an attempt ends, without waiting for the controller.
        self._queued: dict[tuple[str, int], tuple[AttemptRequest, float]] = {}
        self._closing = False
        self._finishers: set[asyncio.Task[None]] = set()
        self._acked = asyncio.Event()
        self.attempts_started = 0  # since this process started (for the metrics)
        self.attempts_finished: dict[str, int] = {}  # by outcome

    # ---- session callbacks ----

    def hello_info(self) -> Hello:
        unreported = self.journal.pending()
        journaled = {(r.task_id, r.attempt) for r in unreported}
        # Every attempt given to this process is in one list: one whose process ended but whose result is
        # not stored yet still counts as running.
        running = [
            RunningAttempt(k[0], k[1], a.execution.started_at) for k, a in self._attempts.items() if k not in journaled
        ] + [RunningAttempt(k[0], k[1], at) for k, (_req, at) in self._queued.items()]
        return Hello(
            name=self.name,
            address=self.address,
            capacity=self.capacity,
            labels=dict(self.labels),
            running=tuple(running),
            unreported=tuple(unreported),
            draining=self.draining,
            instance_id=self.instance_id,
            containment=self.launcher.containment.describe(),
            version=__version__,
            protocol_version=PROTOCOL_VERSION,
            path_names=tuple(sorted(self.paths)),
        )

    def on_welcome(self, usage_interval_s: float, output_tail_bytes: int = 0) -> None:
        if usage_interval_s > 0:
            self.usage_interval_s = usage_interval_s
        self.output_tail_bytes = max(0, output_tail_bytes)

    def _output_keep(self) -> int:
        """How far before the end of a flood of output the pumps send on from (0: every byte)."""
        return self.output_tail_bytes

    def on_connected(self) -> None:
        """A session began: send what was dropped while there was none (latest usage and progress)."""
        if self.last_usage is not None:
            self.uplink.usage(self.last_usage)
        for key, a in self._attempts.items():
            if a.execution.progress is not None and a.execution.key in self.launcher.running:
                self.uplink.progress(key[0], key[1], a.execution.progress)

    def resume_output(self, task_id: str, attempt: int, offset: int) -> None:
        """The controller holds the attempt's output before offset: its pump sends on from there (for an
        attempt that ended, a new pump sends the rest of its log)."""
        a = self._attempts.get((task_id, attempt))
        if a is not None:
            a.pump.resume(offset)
        elif self.journal.get(task_id, attempt) is not None:
            resend_rest(
                self.log_dir / f"{safe_stem(task_id, attempt)}.log",
                task_id,
                attempt,
                offset,
                self.uplink.output,
                self._finishers,
                keep=self._output_keep,
            )

    def on_assign(self, req: AttemptRequest) -> None:
        key = (req.task_id, req.attempt)
        if key in self._attempts or key in self._queued:
            log.info("attempt %s/%d is already running here; ignoring the repeated assignment", *key)
            return
        done = self.journal.get(*key)
        if done is not None:
            log.info("attempt %s/%d already finished here; reporting its result again", *key)
            self.uplink.finished(done)
            return
        queued = [q for q, _at in self._queued.values()]
        reason = assignment_refusal(req, self.launcher.running.values(), self.capacity, queued)
        if reason or self._closing:
            reason = reason or "the runner is stopping"
            log.warning("attempt %s/%d refused: %s", *key, reason)
            self.uplink.refused(req.task_id, req.attempt, reason)
            return
        if self._queued or len(self.launcher.running) >= self.capacity.slots:
            self._queued[key] = (req, time.time())  # it starts when a slot frees (_start_queued)
            return
        self._start(req)

    def _start(self, req: AttemptRequest) -> Execution:
        key = (req.task_id, req.attempt)
        execution = self.launcher.start(req, self)
        self.attempts_started += 1
        pump = OutputPump(execution.log_path, req.task_id, req.attempt, self.uplink.output, keep=self._output_keep)
        self._attempts[key] = _Attempt(execution, pump)
        task = asyncio.get_running_loop().create_task(self._finish(key))
        self._finishers.add(task)
        task.add_done_callback(self._finishers.discard)
        return execution

    def _start_queued(self) -> None:
        """Start queued assignments while a slot is free (in the order they came)."""
        while self._queued and not self._closing and len(self.launcher.running) < self.capacity.slots:
            key = next(iter(self._queued))
            self._start(self._queued.pop(key)[0])

    def on_cancel(self, task_id: str, attempt: int, reason: str) -> None:
        queued = self._queued.pop((task_id, attempt), None)
        if queued is not None:  # it ends before it starts, reported as any cancelled attempt is
            log.info("cancelling queued attempt %s/%d: %s", task_id, attempt, reason or "no reason given")
            self._start(queued[0]).cancel(reason or "cancelled by the controller")
            return
        a = self._attempts.get((task_id, attempt))
        if a is not None:
            log.info("cancelling attempt %s/%d: %s", task_id, attempt, reason or "no reason given")
            a.execution.cancel(reason or "cancelled by the controller")
            return
        done = self.journal.get(task_id, attempt)
        if done is not None:
            self.uplink.finished(done)
        else:
            log.info("cancel of attempt %s/%d, which is not running here", task_id, attempt)

    def on_ack(self, task_id: str, attempt: int) -> None:
        self.journal.ack(task_id, attempt)
        if not len(self.journal):
            self._acked.set()

    # ---- the launcher's sink ----

    def on_output(self, execution: Execution) -> None:
        a = self._attempts.get(execution.key)
        if a is not None:
            a.pump.notify(execution.written)

    def on_progress(self, execution: Execution, progress: Progress) -> None:
        a = self._attempts.get(execution.key)
        if a is not None:
            a.progress = progress
            self._report_soon(execution.key, a)

    def on_metrics(self, execution: Execution, points: list[MetricPoint]) -> None:
        a = self._attempts.get(execution.key)
        if a is not None:
            a.metrics.add(points)
            self._report_soon(execution.key, a)

    def _report_soon(self, key: tuple[str, int], a: _Attempt) -> None:
        """Progress and metric points go together, at most one report per PROGRESS_INTERVAL_S."""
        loop = asyncio.get_running_loop()
        delay = a.throttle.offer(loop.time(), True)
        if delay == 0:
            self._flush_progress(key)
        elif a.flush is None:
            a.flush = loop.call_later(delay, self._flush_progress, key)

    def _flush_progress(self, key: tuple[str, int]) -> None:
        """Send the progress and metric points not sent yet (the latest always: also when the attempt ends)."""
        a = self._attempts.get(key)
        if a is None:
            return
        a.flush = None
        a.throttle.take(asyncio.get_running_loop().time())
        p, a.progress = a.progress, None
        points = a.metrics.points()
        if points:
            a.metrics = MetricSeries(POINTS_PER_REPORT)
        if p is not None or points:
            self.uplink.progress(key[0], key[1], p, points)

    async def _finish(self, key: tuple[str, int]) -> None:
        a = self._attempts[key]
        try:
            result = replace(await a.execution.done, output_bytes=a.execution.written)
            self._start_queued()  # the slot is free: the next attempt starts before this one is reported
            self.journal.put(result)
            self._acked.clear()
            self.attempts_finished[result.state.value] = self.attempts_finished.get(result.state.value, 0) + 1
            log.info(
                "attempt %s/%d %s%s", key[0], key[1], result.state.value, f": {result.error}" if result.error else ""
            )
            if a.flush is not None:
                a.flush.cancel()
            self._flush_progress(key)
            await a.pump.finish(a.execution.written)
        finally:
            self._attempts.pop(key, None)
            if self.retention.sweep_after_finish():
                self._background(self.sweep_logs())
        if self.journal.get(*key) is not None:  # not acknowledged yet (a reconnect's Hello may have carried it)
            self.uplink.finished(result)

    def _background(self, coro: Coroutine[None, None, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._finishers.add(task)
        task.add_done_callback(self._finishers.discard)

    # ---- log retention ----

    def retained(self) -> set[str]:
        """The log stems retention must not touch: running, not yet reported or acknowledged, lately read."""
        keys = (
            set(self.launcher.running) | set(self._attempts) | {(r.task_id, r.attempt) for r in self.journal.pending()}
        )
        return {safe_stem(t, a) for t, a in keys} | self.retention.lately_read()

    async def sweep_logs(self) -> None:
        """One retention sweep, its file work in a worker thread."""
        async with self._sweeping:
            swept = await asyncio.to_thread(self.retention.sweep, self.retained())
        if swept.removed:
            log.info(
                "log retention: removed %d attempt log%s (%d bytes); %d bytes of logs kept in %s",
                swept.removed,
                "" if swept.removed == 1 else "s",
                swept.freed,
                swept.kept_bytes,
                self.log_dir,
            )

    async def retention_loop(self) -> None:
        """A sweep at start, then one every SWEEP_INTERVAL_S."""
        while True:
            try:
                await self.sweep_logs()
            except Exception:
                log.exception("log retention sweep failed")
            await asyncio.sleep(SWEEP_INTERVAL_S)

    # ---- status, drain, usage ----

    def running(self) -> list[RunningAttempt]:
        return [RunningAttempt(k[0], k[1], e.started_at) for k, e in self.launcher.running.items()]

    def set_draining(self, draining: bool) -> None:
        if draining != self.draining:
            self.draining = draining
            log.info("draining %s", "on: taking no new work" if draining else "off: taking work again")
            self.uplink.drain(draining)

    async def usage_loop(self) -> None:
        """Sample usage every usage_interval_s and send it (the sample is the heartbeat); keep the watchdog alive."""
        while True:
            started = time.monotonic()
            try:
                sample = await asyncio.to_thread(self.sampler.sample)
            except Exception:
                log.exception("usage sample failed")
            else:
                sample = replace(sample, attempts=self.attempt_usage(self.sampler.gpu_processes))
                self.last_usage = sample
                self.uplink.usage(sample)
            self.launcher.live_watchdog()  # a killed watchdog is replaced within a tick, not at the next start
            await asyncio.sleep(max(0.05, self.usage_interval_s - (time.monotonic() - started)))

    def attempt_usage(self, gpu_processes: dict[int, int] | None) -> tuple[AttemptUsage, ...]:
        """The usage of every running attempt, from its sampled process tree (GPU memory: of its processes,
        when gpu_processes, the memory per pid, is known)."""
        out = []
        for (task_id, attempt), e in self.launcher.running.items():
            f = e.footprint
            gpu = None if gpu_processes is None else sum(gpu_processes.get(pid, 0) for pid in f.pids)
            out.append(AttemptUsage(task_id, attempt, round(f.cpu_percent, 1), f.rss, gpu, round(f.cpu_time, 3)))
        return tuple(out)

    async def close(self) -> None:
        """Stop every attempt (SIGTERM, grace, SIGKILL), then try to report their results."""
        self.draining = True
        self._closing = True
        for (task_id, attempt), _queued in self._queued.items():  # never started: queued again elsewhere
            self.uplink.refused(task_id, attempt, "the runner stopped before the attempt started")
        self._queued.clear()
        stopped = bool(self.launcher.running)
        await self.launcher.close()
        if self._finishers:
            await asyncio.wait(set(self._finishers), timeout=SHUTDOWN_REPORT_S)
        if stopped and len(self.journal) and self.uplink.connected:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._acked.wait(), SHUTDOWN_REPORT_S)
        for a in list(self._attempts.values()):
            a.pump.stop()
