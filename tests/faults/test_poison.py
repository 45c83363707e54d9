"""A task that kills its runner: after runner.poison_after deaths in a row it fails, instead of taking the
cluster down one runner at a time; the runners (restarted each time, as a supervisor would) keep working."""

from __future__ import annotations

import time
from pathlib import Path

from dtask_common.models import TaskState

from tests.faults.helpers import client, controller_proc, stop_all
from tests.support import Proc, runner_proc

POISON = 'echo "attempt $DTASK_ATTEMPT kills $PPID"; kill -9 $PPID; sleep 30'


def test_a_task_that_kills_its_runner_three_times_fails_and_the_runners_keep_working(home: Path) -> None:
    ctl = controller_proc(home, "runner.poison_after=3", dead_after_s=0.5, lost_after_s=5)
    runners: dict[str, Proc] = {}
    restarts = 0
    try:
        for name in ("r1", "r2"):
            runners[name] = runner_proc(home, ctl.address, name)
        with client(home, ctl.address) as c:
            tid = c.add_task(POISON, name="poison", max_retries=10)
            deadline = time.monotonic() + 90
            while not (t := c.task(tid)).state.finished:  # supervise: restart a runner the task killed
                assert time.monotonic() < deadline, f"the task never failed: {t}\n{''.join(ctl.lines)}"
                for name, proc in runners.items():
                    if proc.popen.poll() is not None:
                        runners[name] = runner_proc(home, ctl.address, name)
                        restarts += 1
                time.sleep(0.05)
            assert t.state is TaskState.FAILED, t
            assert "its runner died 3 times in a row running it" in t.error, t.error
            assert len(t.attempts) == 3 and all(a.state is TaskState.LOST for a in t.attempts), t.attempts
            ctl.wait_for(rf"task {tid} failed: its runner died 3 times")
            for name, proc in runners.items():  # the last one it killed comes back too
                if proc.popen.poll() is not None:
                    runners[name] = runner_proc(home, ctl.address, name)
                    restarts += 1
            assert restarts == 3
            ok = c.add_tasks([{"shell": "echo fine", "name": f"after-{i}"} for i in range(4)])
            done = c.wait(ok, timeout=30)
            assert [d.state for d in done] == [TaskState.SUCCEEDED] * 4
            assert {d.attempts[0].executor for d in done} <= {"r1", "r2"}
    finally:
        stop_all(*runners.values(), ctl)
