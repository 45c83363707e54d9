"""Running one attempt: spawn in its own session, stream output, time out, cancel, reap, measure."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import re
import resource
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import psutil
from dtask_common.models import AttemptResult, Progress, TaskSpec, TaskState
from dtask_common.private import open_private, private_dir
from dtask_common.progress import ProgressParser, parser_for

from dtask_runner.containment import Box, Containment, open_containment
from dtask_runner.results import ResultCapture
from dtask_runner.taskenv import Attempt as TaskAttempt
from dtask_runner.taskenv import task_env
from dtask_runner.taskuser import TaskUser, read_result_file
from dtask_runner.watchdog import Watchdog

log = logging.getLogger("dtask.runner.executor")

READ_SIZE = 256 * 1024
PIPE_SIZE = 1024 * 1024
STATS_FIRST_S = 0.05
STATS_INTERVAL_S = 0.5
F_SETPIPE_SZ = 1031
# After the main process exits, how long to wait for the output pipe to close.
DRAIN_TIMEOUT_S = 2.0


class Sink(Protocol):
    """Where an execution reports while it runs."""

    def on_output(self, execution: Execution) -> None: ...

    def on_progress(self, execution: Execution, progress: Progress) -> None: ...


class SpawnError(Exception):
    """The attempt could not start (missing executable, bad cwd, ...); the message says why."""


@dataclass(frozen=True, slots=True)
class AttemptRequest:
    """An attempt the controller asked this runner to run."""

    task_id: str
    attempt: int
    spec: TaskSpec
    gpu_ids: tuple[int, ...] = ()


def safe_stem(task_id: str, attempt: int) -> str:
    """A file-name stem for an attempt."""
    return f"{re.sub(r'[^A-Za-z0-9_.-]', '_', task_id)[:100]}.{attempt}"


class Launcher:
    """Starts attempts on this machine; owns the watchdog that outlives nothing.

    Every task carries this executor's token in DTASK_RUNNER_TOKEN, by which the watchdog finds
    what is left of them if the runner dies (see dtask_runner.watchdog).
    """

    def __init__(
        self,
        log_dir: Path,
        work_dir: Path,
        *,
        kill_grace_s: float = 10.0,
        base_env: Mapping[str, str] | None = None,
        hide_gpus: bool = False,
        watchdog: bool = True,
        user: TaskUser | None = None,
        containment: Containment | None = None,
    ):
        self.log_dir = log_dir
        self.work_dir = work_dir
        self.kill_grace_s = kill_grace_s
        self.base_env = dict(os.environ if base_env is None else base_env)
        self.hide_gpus = hide_gpus
        self.user = user
        # A task of another user writes its result file in its work dir (the log dir is root's).
        self.result_dir = work_dir if user is not None else log_dir
        private_dir(log_dir)
        private_dir(work_dir)
        self.token = secrets.token_hex(8)
        self.containment = containment if containment is not None else open_containment("auto", "executor")
        self.watchdog = Watchdog(self.token, self.containment.group) if watchdog else None
        self.running: dict[tuple[str, int], Execution] = {}
        self.devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)  # every task's stdin

    def live_watchdog(self) -> Watchdog | None:
        """The watchdog, started again (with every running group) if something killed it."""
        if self.watchdog is not None and not self.watchdog.alive:
            log.warning("the watchdog process %d is gone; starting a new one", self.watchdog.pid)
            self.watchdog = Watchdog(self.token, self.containment.group)
            for e in self.running.values():
                if e.pid:
                    self.watchdog.add(e.pid)
        return self.watchdog

    def start(self, req: AttemptRequest, sink: Sink) -> Execution:
        """Start the attempt now; await `execution.done` for its result."""
        execution = Execution(self, req, sink)
        self.running[(req.task_id, req.attempt)] = execution
        execution.start()
        return execution

    async def close(self, reason: str = "the runner stopped while the attempt ran") -> None:
        """Stop every running attempt (as FAILED, so that it may be retried) and the watchdog."""
        executions = list(self.running.values())
        for e in executions:
            e.cancel(reason, outcome=TaskState.FAILED)
        if executions:
            await asyncio.gather(*(e.done for e in executions), return_exceptions=True)
        self.containment.close()
        if self.watchdog is not None:
            self.watchdog.close()
        with contextlib.suppress(OSError):
            os.close(self.devnull)

    def _build(self, req: AttemptRequest, result_file: Path) -> tuple[list[str], str, dict[str, str]]:
        spec = req.spec
        cwd = os.path.expanduser(spec.cwd) if spec.cwd else str(self.work_dir)
        if not os.path.isabs(cwd):
            cwd = str(self.work_dir / cwd)
        if not os.path.isdir(cwd):
            raise SpawnError(f"working directory {cwd!r} does not exist on this runner")
        env = task_env(self.base_env, spec.env, TaskAttempt(req.task_id, req.attempt, str(result_file), self.token,
                                                            req.gpu_ids), hide_gpus=self.hide_gpus, user=self.user)
        argv = list(spec.argv) if spec.argv else ["/bin/sh", "-c", spec.shell]
        program = argv[0]
        if "/" in program:
            path = program if os.path.isabs(program) else os.path.join(cwd, program)
            if not os.path.isfile(path):
                raise SpawnError(f"executable {program!r} does not exist on this runner")
            if not os.access(path, os.X_OK):
                raise SpawnError(f"{program!r} is not executable (chmod +x it, or run it through an interpreter)")
            argv[0] = path
        else:
            found = shutil.which(program, path=env.get("PATH", os.defpath))
            if not found:
                where = "the task's env" if "PATH" in spec.env else env.get("PATH", os.defpath)  # env values are secret
                raise SpawnError(f"executable {program!r} was not found on PATH ({where})")
            argv[0] = found
        return argv, cwd, env


class Execution:
    """One running attempt: its process group, output log, progress and result."""

    def __init__(self, executor: Launcher, req: AttemptRequest, sink: Sink):
        self.executor = executor
        self.req = req
        self.sink = sink
        stem = safe_stem(req.task_id, req.attempt)
        self.log_path = executor.log_dir / f"{stem}.log"
        self.result_path = executor.result_dir / f"{stem}.result.json"
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
        self._parser: ProgressParser = parser_for("none")
        self._capture = ResultCapture(req.spec.result_marker)
        self._log_fd = -1
        self._peak_rss = 0
        self._cpu_time = 0.0
        self._task: asyncio.Task[None] | None = None
        self._box: Box = executor.containment.attempt(req.task_id, req.attempt, executor.token)

    @property
    def key(self) -> tuple[str, int]:
        return (self.req.task_id, self.req.attempt)

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
            self.executor.running.pop(self.key, None)
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
        p = self._parser.feed(data)
        if p is not None:
            p.updated_at = time.time()
            self.progress = p
            self.sink.on_progress(self, p)
        self.sink.on_output(self)

    def _log_broken(self, exc: OSError) -> None:
        """The log takes no more output (disk full, I/O error): stop the attempt as FAILED, saying why."""
        if not self._stop_requested:
            reason = (f"cannot write its log {self.log_path}: {exc.strerror or exc}; free space there or give "
                      "the runner another --log-dir")
            log.error("attempt %s/%d: %s", self.req.task_id, self.req.attempt, reason)
            self.cancel(reason, outcome=TaskState.FAILED)

    async def _execute(self) -> AttemptResult:
        try:
            self._log_fd = open_private(self.log_path, os.O_WRONLY | os.O_TRUNC)
        except OSError as exc:
            return self._result(TaskState.FAILED, error=f"cannot create its log {self.log_path}: "
                                f"{exc.strerror or exc}; make the runner's --log-dir writable")
        with contextlib.suppress(FileNotFoundError):
            self.result_path.unlink()
        spec = self.req.spec
        try:
            self._parser = parser_for(spec)
            argv, cwd, env = self.executor._build(self.req, self.result_path)
            if self._stop_requested:
                raise SpawnError(self._cancel_reason)
            argv, stdin = self._box.spawn(argv, self.executor.devnull)
            proc = subprocess.Popen(
                argv, cwd=cwd, env=env, stdin=stdin, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, start_new_session=True, close_fds=True,
                **(self.executor.user.spawn_args() if self.executor.user else {}),
            )
            self._box.started(proc.pid)
        except (SpawnError, OSError, ValueError) as exc:
            await self._box.close()
            message = _spawn_message(exc)
            self._emit(f"dtask: {message}\n".encode())
            if self._cancel_reason:
                return self._result(self._cancel_outcome, error=f"stopped before it started: {self._cancel_reason}")
            return self._result(TaskState.FAILED, error=message)
        self.pid = pgid = proc.pid
        watchdog = self.executor.live_watchdog()
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
            # A child's ru_maxrss starts at the runner's own high-water mark (fork/exec inherits
            # it), so it only tells about the task when it is above that.
            maxrss = rusage.ru_maxrss * 1024  # type: ignore[attr-defined]
            if maxrss > resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024:
                self._peak_rss = max(self._peak_rss, maxrss)
            self._cpu_time = max(self._cpu_time, rusage.ru_utime + rusage.ru_stime)  # type: ignore[attr-defined]
        if self._box.peak_bytes is not None:  # the cgroup's memory.peak, when it has one
            self._peak_rss = self._box.peak_bytes
        return self._decide(status)

    async def _supervise(self, proc: subprocess.Popen[bytes]) -> tuple[int, object]:
        loop = asyncio.get_running_loop()
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
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
        exited = _wait_exit(loop, proc.pid)
        stats = _Stats(self, proc.pid, exited)
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
                await self._terminate(proc.pid, exited)
            status, rusage = await exited
            # The main process is gone: kill what it left (in its group, cgroup or by the sweep) so the pipe closes.
            await self._box.kill()
            if not eof.done():
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(eof), DRAIN_TIMEOUT_S)
        finally:
            stats.stop()
            loop.remove_reader(fd)
            proc.stdout.close()
        self._capture.close()
        return status, rusage

    async def _terminate(self, pgid: int, exited: asyncio.Future[tuple[int, object]]) -> None:
        await self._box.signal(signal.SIGTERM)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(exited), self.executor.kill_grace_s)
        await self._box.kill()

    def _account(self, rss: int, cpu: float) -> None:
        self._peak_rss = max(self._peak_rss, rss)
        self._cpu_time = max(self._cpu_time, cpu)

    # ---- outcome ----

    def _decide(self, status: int) -> AttemptResult:
        code = os.waitstatus_to_exitcode(status)
        exit_code, sig = (code, None) if code >= 0 else (None, -code)
        cap = self._capture
        if self._cancel_reason:
            if self._cancel_outcome is TaskState.CANCELLED:
                return self._result(TaskState.CANCELLED, exit_code, sig, f"cancelled: {self._cancel_reason}")
            return self._result(self._cancel_outcome, exit_code, sig, self._cancel_reason)
        if self._timed_out:
            return self._result(TaskState.FAILED, exit_code, sig, f"timed out after {self.req.spec.timeout_s:g} s")
        if sig is not None:
            detail = f": {cap.error_line}" if cap.error_line else ""
            return self._result(TaskState.FAILED, exit_code, sig, f"killed by {_signame(sig)}{detail}")
        if exit_code:
            detail = f": {cap.error_line}" if cap.error_line else ""
            return self._result(TaskState.FAILED, exit_code, sig, f"exit code {exit_code}{detail}")
        if cap.runtime_error:
            return self._result(TaskState.FAILED, exit_code, sig, cap.last_error_line or "RuntimeError in the output")
        return self._result(TaskState.SUCCEEDED, exit_code, sig, "")

    def _result(self, state: TaskState, exit_code: int | None = None, sig: int | None = None,
                error: str = "") -> AttemptResult:
        raw = read_result_file(self.result_path, self.executor.user)
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
            peak_rss_bytes=self._peak_rss,
            cpu_time_s=round(self._cpu_time, 3),
        )


class _Stats:
    """Samples the task tree's memory and CPU: first after STATS_FIRST_S (a task that ends sooner
    costs nothing but a timer), then every STATS_INTERVAL_S; wait4's rusage covers the rest."""

    def __init__(self, execution: Execution, pid: int, exited: asyncio.Future[Any]):
        self._execution = execution
        self._pid = pid
        self._exited = exited
        self._loop = asyncio.get_running_loop()
        self._root: psutil.Process | None = None
        self._delay = STATS_FIRST_S
        self._timer: asyncio.TimerHandle | None = self._loop.call_later(self._delay, self._sample)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _sample(self) -> None:
        self._timer = None
        if self._exited.done():  # reaped: the pid may belong to someone else now
            return
        try:
            if self._root is None:
                self._root = psutil.Process(self._pid)
            root = self._root
            rss, cpu = 0, 0.0
            procs = [root]
            with contextlib.suppress(psutil.Error):
                procs += root.children(recursive=True)
            for p in procs:
                with contextlib.suppress(psutil.Error):
                    rss += p.memory_info().rss
                    t = p.cpu_times()
                    cpu += t.user + t.system + (t.children_user + t.children_system if p is root else 0.0)
        except psutil.Error:
            return
        self._execution._account(rss, cpu)
        self._delay = min(STATS_INTERVAL_S, self._delay * 3)
        self._timer = self._loop.call_later(self._delay, self._sample)


def _wait_exit(loop: asyncio.AbstractEventLoop, pid: int) -> asyncio.Future[tuple[int, object]]:
    """A future of (wait status, rusage) for a child, reaped with wait4 when its pidfd is readable."""
    fut: asyncio.Future[tuple[int, object]] = loop.create_future()

    def reap() -> bool:
        try:
            wpid, status, rusage = os.wait4(pid, os.WNOHANG)
        except ChildProcessError:
            if not fut.done():
                fut.set_result((0, None))
            return True
        if wpid == 0:
            return False
        if not fut.done():
            fut.set_result((status, rusage))
        return True

    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        async def poll() -> None:
            while not reap():
                await asyncio.sleep(0.02)

        loop.create_task(poll())
        return fut

    def on_ready() -> None:
        if reap():
            loop.remove_reader(pidfd)
            os.close(pidfd)

    loop.add_reader(pidfd, on_ready)
    return fut


def _signame(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def _spawn_message(exc: BaseException) -> str:
    if isinstance(exc, SpawnError):
        return str(exc)
    if isinstance(exc, FileNotFoundError):
        return f"could not start: {exc.strerror}: {exc.filename!r}"
    if isinstance(exc, PermissionError):
        return f"could not start: permission denied: {exc.filename!r}"
    return f"could not start: {exc}"
