"""One running attempt: spawned in its own session, its output streamed to its log, timed out, cancelled, reaped."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
import subprocess
import time
from typing import TYPE_CHECKING, Protocol

from dtask_common.metrics import MetricScanner, Values
from dtask_common.models import AttemptResult, MetricPoint, Progress, TaskState
from dtask_common.progress import parser_for

from dtask_runner.attempt_log import create_log, log_problem
from dtask_runner.attempt_request import AttemptRequest, metrics_file_for, safe_stem
from dtask_runner.containment import Box
from dtask_runner.footprint import Footprint, TreeSampler
from dtask_runner.metrics_file import MetricsFileTail
from dtask_runner.outcome import outcome
from dtask_runner.progress_feed import ThrottledParser
from dtask_runner.reap import Exit, wait_exit
from dtask_runner.results import ResultCapture
from dtask_runner.spawn import SpawnError, popen, spawn_message
from dtask_runner.taskuser import read_result_file

if TYPE_CHECKING:
    from dtask_runner.launcher import Launcher

log = logging.getLogger(__name__)

READ_SIZE = 1024 * 1024  # the whole pipe: under a flood, each read (and scan of it) takes all that is there
PIPE_SIZE = 1024 * 1024
F_SETPIPE_SZ = 1031
# After the main process exits, how long to wait for the output pipe to close.
DRAIN_TIMEOUT_S = 2.0
# How often the attempt's $DTASK_METRICS_FILE is read for new lines.
METRICS_POLL_S = 0.5


def _close_opened(opening: asyncio.Future[int]) -> None:
    """Close a log created for an attempt that ended without it."""
    if not opening.cancelled() and opening.exception() is None:
        os.close(opening.result())


class Sink(Protocol):
    """Where an execution reports while it runs."""

    def on_output(self, execution: Execution) -> None: ...

    def on_progress(self, execution: Execution, progress: Progress) -> None: ...

    def on_metrics(self, execution: Execution, points: list[MetricPoint]) -> None: ...


class Execution:
    """One running attempt: its process group, output log, progress and result."""

    def __init__(self, launcher: Launcher, req: AttemptRequest, sink: Sink):
        self.launcher = launcher
        self.req = req
        self.sink = sink
        stem = safe_stem(req.task_id, req.attempt)
        self.log_path = launcher.log_dir / f"{stem}.log"
        self.result_path = launcher.result_dir / f"{stem}.result.json"
        self.started_at = time.time()
        self.written = 0
        self.pid = 0
        self.progress: Progress | None = None
        self.done: asyncio.Future[AttemptResult] = asyncio.get_running_loop().create_future()
        self._cancel_reason = ""
        self._cancel_outcome = TaskState.CANCELLED
        self._timed_out = False
        self._stop_requested = False
        self._wake: asyncio.Future[None] | None = None  # resolved to stop waiting for the process
        self._progress = ThrottledParser(parser_for("none"))
        self._progress_due: asyncio.TimerHandle | None = None  # the parse of output waiting for it
        self._capture = ResultCapture(req.spec.result_marker)
        self._metrics = MetricScanner()
        self.metrics_path = metrics_file_for(self.result_path)
        self._metrics_file = MetricsFileTail(self.metrics_path, launcher.user)
        self._metrics_poll: asyncio.TimerHandle | None = None
        self._log_fd = -1
        self._opening: asyncio.Future[int] | None = None  # the log's fd, being created in a thread
        self._out_fd = -1  # the read end of the attempt's output pipe
        self._footprint = Footprint()
        self._task: asyncio.Task[None] | None = None
        self._box: Box = launcher.containment.attempt(req.task_id, req.attempt, launcher.token)

    @property
    def key(self) -> tuple[str, int]:
        return (self.req.task_id, self.req.attempt)

    @property
    def footprint(self) -> Footprint:
        """The attempt's memory and CPU so far (sampled while it runs)."""
        return self._footprint

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"attempt {self.key}")

    def cancel(self, reason: str = "cancelled", *, outcome: TaskState = TaskState.CANCELLED) -> None:
        """Stop the attempt: SIGTERM to its group, the grace period, then SIGKILL.

        The attempt ends as `outcome`: CANCELLED when asked to, FAILED when the runner stops.
        """
        if not self._cancel_reason:
            self._cancel_reason = reason or "cancelled"
            self._cancel_outcome = outcome
        self._stop_requested = True
        self._wake_up()

    def _wake_up(self) -> None:
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    # ---- the attempt ----

    async def _run(self) -> None:
        try:
            result = await self._execute()
        except Exception as exc:  # a bug must not leave the attempt hanging
            log.exception("attempt %s crashed in the runner", self.key)
            result = self._result(TaskState.FAILED, error=f"runner error: {exc}")
        finally:
            self.launcher.running.pop(self.key, None)
            self._close_out()
            if self._opening is not None and self._log_fd < 0:  # (created after all: closed once it is)
                self._opening.add_done_callback(_close_opened)
            if self._log_fd >= 0:
                os.close(self._log_fd)
                self._log_fd = -1
        if not self.done.done():
            self.done.set_result(result)

    def _emit(self, data: bytes) -> None:
        try:
            n = os.write(self._log_fd, data)
            while n < len(data):  # a short write (the disk filling up?): the rest, or the error
                n += os.write(self._log_fd, data[n:])
        except OSError as exc:
            self._log_broken(exc)
            return
        self.written += len(data)
        self._capture.feed(data)
        if self._progress.enabled:
            loop = asyncio.get_running_loop()
            self._progressed(self._progress.feed(data, loop.time()))
            due = self._progress.due
            if due is not None and self._progress_due is None:
                self._progress_due = loop.call_at(due, self._parse_waiting)
        self._metric_values(self._metrics.feed(data))
        self.sink.on_output(self)

    def _parse_waiting(self) -> None:
        """Parse the output that waited for its turn (ThrottledParser); also when the attempt ends."""
        if self._progress_due is not None:
            self._progress_due.cancel()
            self._progress_due = None
        self._progressed(self._progress.flush(asyncio.get_running_loop().time()))

    def _progressed(self, p: Progress | None) -> None:
        if p is not None:
            p.updated_at = time.time()
            self.progress = p
            self.sink.on_progress(self, p)

    def _metric_values(self, values: Values) -> None:
        if values:
            now = time.time()
            self.sink.on_metrics(self, [MetricPoint(name, now, value) for name, value in values])

    def _poll_metrics_file(self, *, final: bool = False) -> None:
        """Read what the task added to its metrics file; again in METRICS_POLL_S until it ends."""
        self._metrics_poll = None
        while True:
            before = self._metrics_file.offset
            self._metric_values(self._metrics_file.read(final=final))
            if not final or self._metrics_file.offset == before:
                break
        if not final:
            self._metrics_poll = asyncio.get_running_loop().call_later(METRICS_POLL_S, self._poll_metrics_file)

    def _log_broken(self, exc: OSError) -> None:
        """The log takes no more output (disk full, I/O error): stop the attempt as FAILED, saying why."""
        if not self._stop_requested:
            reason = (
                f"cannot write its log {self.log_path}: {exc.strerror or exc}; free space there or give "
                "the runner another --log-dir"
            )
            log.error("attempt %s/%d: %s", self.req.task_id, self.req.attempt, reason)
            self.cancel(reason, outcome=TaskState.FAILED)

    def _create_log(self) -> int:
        return create_log(self.log_path, (self.result_path, self.metrics_path))

    def _start_log(self) -> str:
        """Create the log now ('' or why the attempt cannot run), or start creating it in a thread (_opening)."""
        creation = self.launcher.log_creation
        if not creation.inline():
            self._opening = asyncio.get_running_loop().run_in_executor(None, self._create_log)
            return ""
        t0 = time.perf_counter()
        try:
            self._log_fd = self._create_log()
        except OSError as exc:
            return log_problem(self.log_path, exc)
        finally:
            creation.took(time.perf_counter() - t0)
        return ""

    async def _log_created(self) -> str:
        """Wait for the log; '' once it is open, else why the attempt cannot run."""
        assert self._opening is not None
        try:
            fd = await asyncio.shield(self._opening)
        except OSError as exc:
            self._opening = None
            return log_problem(self.log_path, exc)
        self._opening, self._log_fd = None, fd
        return ""

    async def _execute(self) -> AttemptResult:
        # A log created in a thread is made while the process is spawned when the box gates it (the task runs
        # only after started(), once the log exists); without a gate, first.
        if problem := self._start_log():
            return self._result(TaskState.FAILED, error=problem)
        if self._opening is not None and not self._box.gated and (problem := await self._log_created()):
            return self._result(TaskState.FAILED, error=problem)
        spec = self.req.spec
        launcher = self.launcher
        try:
            self._progress = ThrottledParser(parser_for(spec))
            argv, cwd, env = launcher.command(self.req, self.result_path)
            if self._stop_requested:
                raise SpawnError(self._cancel_reason)
            argv, stdin = self._box.spawn(argv, launcher.devnull, moves_itself=launcher.user is None)
            # The output pipe is ours (a bare fd: no file object, with its fstat, ioctl and lseek, per attempt).
            self._out_fd, out_w = os.pipe2(os.O_CLOEXEC)
            try:
                proc = popen(argv, cwd, env, stdin, out_w, launcher.user)
            finally:
                os.close(out_w)
            if self._opening is not None and (problem := await self._log_created()):
                return await self._never_started(proc, problem)
            await self._box.started(proc.pid)
        except (SpawnError, OSError, ValueError) as exc:
            self._close_out()
            await self._box.close()
            if self._opening is not None and (problem := await self._log_created()):
                return self._result(TaskState.FAILED, error=problem)
            message = spawn_message(exc)
            self._emit(f"dtask: {message}\n".encode())
            if self._cancel_reason:
                return self._result(self._cancel_outcome, error=f"stopped before it started: {self._cancel_reason}")
            return self._result(TaskState.FAILED, error=message)
        self.pid = pgid = proc.pid
        watchdog = launcher.group_watchdog()
        if watchdog is not None:
            watchdog.add(pgid)
        log.info("attempt %s/%d started: pid %d", self.req.task_id, self.req.attempt, pgid)
        try:
            status, rusage = await self._supervise(proc)
        finally:
            await self._box.close()  # everything the task started goes too, and its cgroup
            if watchdog is not None:
                watchdog.remove(pgid)
        proc.returncode = status  # reaped here; keep Popen from waiting again
        if rusage is not None:
            self._footprint.reaped(rusage)
        self._footprint.contained(self._box.peak_bytes)
        return self._decide(status)

    async def _never_started(self, proc: subprocess.Popen[bytes], problem: str) -> AttemptResult:
        """The gated process must not run its task: killed at the gate and reaped, and the attempt FAILED."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.returncode, _ = await wait_exit(asyncio.get_running_loop(), proc.pid)
        self._box.reaped()
        self._close_out()
        await self._box.close()
        return self._result(TaskState.FAILED, error=problem)

    def _close_out(self) -> None:
        if self._out_fd >= 0:
            os.close(self._out_fd)
            self._out_fd = -1

    async def _supervise(self, proc: subprocess.Popen[bytes]) -> Exit:
        loop = asyncio.get_running_loop()
        fd = self._out_fd
        with contextlib.suppress(OSError):
            fcntl.fcntl(fd, F_SETPIPE_SZ, PIPE_SIZE)  # fewer wakeups under heavy output
        os.set_blocking(fd, False)
        eof: asyncio.Future[None] = loop.create_future()

        def readable() -> None:
            try:
                data = os.read(fd, READ_SIZE)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if data:
                self._emit(data)
            else:
                loop.remove_reader(fd)
                if not eof.done():
                    eof.set_result(None)

        loop.add_reader(fd, readable)
        self._metrics_poll = loop.call_later(METRICS_POLL_S, self._poll_metrics_file)
        exited = wait_exit(loop, proc.pid)
        sampler = TreeSampler(self._footprint, proc.pid, exited)
        timeout = self.req.spec.timeout_s or None
        try:
            if not exited.done() and not self._stop_requested:
                # One future, woken by the exit, a cancel or the timeout (no helper tasks).
                wake = self._wake = loop.create_future()
                exited.add_done_callback(lambda _: self._wake_up())

                def time_out() -> None:
                    if not exited.done():
                        self._timed_out = True
                        self._wake_up()

                timer = loop.call_later(timeout, time_out) if timeout else None
                try:
                    await wake
                finally:
                    self._wake = None
                    if timer is not None:
                        timer.cancel()
            if not exited.done():
                await self._terminate(exited)
            status, rusage = await exited
            self._box.reaped()
            # The main process is gone: kill what it left (in its group, cgroup or by the sweep) so the pipe closes.
            await self._box.kill()
            if not eof.done():
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(eof), DRAIN_TIMEOUT_S)
        finally:
            sampler.stop()
            loop.remove_reader(fd)
            self._close_out()
            self._parse_waiting()
            if self._metrics_poll is not None:
                self._metrics_poll.cancel()
        self._capture.close()
        self._metric_values(self._metrics.close())
        self._poll_metrics_file(final=True)
        return status, rusage

    async def _terminate(self, exited: asyncio.Future[Exit]) -> None:
        await self._box.signal(signal.SIGTERM)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(exited), self.launcher.kill_grace_s)
        await self._box.kill()

    # ---- outcome ----

    def _decide(self, status: int) -> AttemptResult:
        o = outcome(
            status,
            self._capture,
            stopped_for=self._cancel_reason,
            stopped_as=self._cancel_outcome,
            timed_out=self._timed_out,
            timeout_s=self.req.spec.timeout_s,
        )
        return self._result(o.state, o.exit_code, o.signal, o.error)

    def _result(
        self, state: TaskState, exit_code: int | None = None, sig: int | None = None, error: str = ""
    ) -> AttemptResult:
        raw = read_result_file(self.result_path, self.launcher.user)
        result, problem = self._capture.result(raw)
        if problem and not error:
            error = problem
        return AttemptResult(
            task_id=self.req.task_id,
            attempt=self.req.attempt,
            state=state,
            exit_code=exit_code,
            signal=sig,
            result=result,
            error=error,
            started_at=self.started_at,
            finished_at=time.time(),
            peak_rss_bytes=self._footprint.peak_rss,
            cpu_time_s=round(self._footprint.cpu_time, 3),
        )
