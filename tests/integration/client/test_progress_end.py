"""Progress through a real controller and runner with real tqdm output: it ends where the task ended (the last
update outlives the rate limit) and what is reported never moves backwards within an attempt."""

from __future__ import annotations

import shlex
import sys

from dtask_common.events import ProgressEvent, TaskEvent
from dtask_common.models import TaskState, WatchFilter

from tests.integration.client.cluster import Cluster

# 100 steps, every one drawn (mininterval=0), far faster than the runner's 5 reports a second.
TQDM_100 = (
    "import sys, time\n"
    "from tqdm import tqdm\n"
    "for _ in tqdm(range(100), desc='train', mininterval=0, file=sys.stderr):\n"
    "    time.sleep(0.004)\n"
)


def tqdm_task(code: str) -> str:
    return f"{shlex.quote(sys.executable)} -c {shlex.quote(code)}"


def test_a_finished_tqdm_task_shows_its_last_step(live: Cluster) -> None:
    with live.client() as c:
        tid = c.add_task(tqdm_task(TQDM_100))
        [task] = c.wait([tid], timeout=60)
        assert task.state is TaskState.SUCCEEDED, task
        for t in (task, c.task(tid)):
            assert t.progress is not None
            assert (t.progress.step, t.progress.total) == (100, 100), t.progress
            assert t.progress.percent == 100.0


def test_progress_never_moves_backwards_while_it_runs(live: Cluster) -> None:
    with live.client() as c:
        tid = c.add_task(tqdm_task("import time; time.sleep(1)\n" + TQDM_100))
        steps: list[int] = []
        final = None
        for event in c.watch(include_usage=False, select=WatchFilter(task_ids=(tid,)), timeout=60):
            body = event.body
            if isinstance(body, ProgressEvent) and body.task_id == tid:
                steps.append(body.progress.step)
            elif isinstance(body, TaskEvent) and body.task.id == tid:
                if body.task.progress is not None:
                    steps.append(body.task.progress.step)
                if body.task.state.finished:
                    final = body.task
                    break
        assert final is not None and final.state is TaskState.SUCCEEDED
        assert steps, "no progress was reported"
        assert steps == sorted(steps), steps
        assert steps[-1] == 100, steps
