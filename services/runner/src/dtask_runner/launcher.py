"""The launcher: starts attempts on this machine, knows which run, and stops them all with the runner."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from dtask_common.models import TaskState
from dtask_common.private import private_dir

from dtask_runner.attempt_log import LogCreation
from dtask_runner.attempt_request import AttemptRequest
from dtask_runner.containment import Containment, open_containment
from dtask_runner.execution import Execution, Sink
from dtask_runner.spawn import build_command
from dtask_runner.taskuser import TaskUser
from dtask_runner.watchdog import Watchdog

log = logging.getLogger(__name__)


class Launcher:
    """Starts attempts on this machine; owns the watchdog that outlives nothing.

    Every task carries this launcher's token in DTASK_RUNNER_TOKEN, by which the watchdog finds
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
        placeholders: Mapping[str, str] | None = None,
        task_env_path: str = "",
    ):
        self.log_dir = log_dir
        self.work_dir = work_dir
        self.kill_grace_s = kill_grace_s
        self.base_env = dict(os.environ if base_env is None else base_env)
        self.hide_gpus = hide_gpus
        self.user = user
        self.placeholders = dict(placeholders or {})  # runner-side placeholders: {runner:work_dir}, {path:NAME}
        self.task_env_path = task_env_path  # the Python environment of tasks that name none
        # A task of another user writes its result file in its work dir (the log dir is root's).
        self.result_dir = work_dir if user is not None else log_dir
        private_dir(log_dir)
        private_dir(work_dir)
        self.token = secrets.token_hex(8)
        self.containment = containment if containment is not None else open_containment("auto", "launcher")
        self.watchdog = Watchdog(self.token, self.containment.group) if watchdog else None
        # Whether the watchdog is told of every attempt's process group (see group_watchdog).
        self.tells_groups = not (self.containment.kind == "cgroup" and self.containment.group)
        self.running: dict[tuple[str, int], Execution] = {}
        self.devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)  # every task's stdin
        self.log_creation = LogCreation()  # on the loop, or in a thread while creates wait

    def live_watchdog(self) -> Watchdog | None:
        """The watchdog, started again (with every running group) if something killed it."""
        if self.watchdog is not None and not self.watchdog.alive:
            log.warning("the watchdog process %d is gone; starting a new one", self.watchdog.pid)
            self.watchdog = Watchdog(self.token, self.containment.group)
            if self.tells_groups:
                for e in self.running.values():
                    if e.pid:
                        self.watchdog.add(e.pid)
        return self.watchdog

    def group_watchdog(self) -> Watchdog | None:
        """The watchdog to tell of an attempt's process group, or None when it need not know.

        Attempts in cgroups are not told one by one: the watchdog kills the runner's cgroup, with every
        attempt's group below it, and an attempt's process runs its task only once it is in its group
        (before that it waits on a pipe that ends with the runner). That spares the watchdog a wakeup and
        the runner two writes per attempt. A dead watchdog is replaced either way."""
        watchdog = self.live_watchdog()
        return watchdog if self.tells_groups else None

    def start(self, req: AttemptRequest, sink: Sink) -> Execution:
        """Start the attempt now; await `execution.done` for its result."""
        execution = Execution(self, req, sink)
        self.running[(req.task_id, req.attempt)] = execution
        execution.start()
        return execution

    def command(self, req: AttemptRequest, result_file: Path) -> tuple[list[str], str, dict[str, str]]:
        """The attempt's argv, cwd and environment on this machine (SpawnError when it cannot run)."""
        return build_command(
            req,
            result_file,
            work_dir=self.work_dir,
            base_env=self.base_env,
            token=self.token,
            hide_gpus=self.hide_gpus,
            user=self.user,
            placeholders=self.placeholders,
            task_env_path=self.task_env_path,
        )

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
