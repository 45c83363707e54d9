"""Progress and live metrics through a real controller and runner with real tqdm output: progress ends where the
task ended (the last update outlives the rate limit) and never moves backwards within an attempt; a running task's
metrics (tqdm postfix, a metric block, a marker line, the metrics file) show in `dtask task --json`."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

from dtask_common.events import ProgressEvent, TaskEvent
from dtask_common.models import TaskState, WatchFilter

from tests.integration.client.cluster import Cluster
from tests.support import BIN

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


# A task that reports metrics in every way dtask reads, then waits to be released by a file.
METRICS_TASK = r"""
import json, os, sys, time
from tqdm import tqdm
bar = tqdm(total=10, desc="train", mininterval=0, file=sys.stderr)
for i in range(10):
    bar.set_postfix(loss=1.0 / (i + 1), step=i)
    bar.update(1)
bar.close()
print("***** eval metrics *****")
print("  eval_acc  = 0.75")
print("  eval_n    = 12")
print()
print('DTASK_METRIC {"lr": 0.001, "tokens": 4096}', flush=True)
with open(os.environ["DTASK_METRICS_FILE"], "a") as f:
    f.write(json.dumps({"gpu_mem": 3.5, "samples": 640}) + "\n")
release = sys.argv[1]
while not os.path.exists(release):
    time.sleep(0.05)
"""

EXPECTED = {"loss", "step", "eval_acc", "eval_n", "lr", "tokens", "gpu_mem", "samples"}


def dtask_task_json(live: Cluster, tid: str) -> dict[str, object]:
    env = dict(os.environ, DTASK_HOME=str(live.home), DTASK_CONTROLLER=live.address)
    env.pop("DTASK_CONFIG", None)
    out = subprocess.run([str(BIN / "dtask"), "task", tid, "--json"], env=env, capture_output=True, timeout=30)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert isinstance(data, dict)
    return data


def test_a_running_tasks_metrics_show_in_dtask_task_json(live: Cluster, tmp_path: Path) -> None:
    release = tmp_path / "release"
    with live.client() as c:
        tid = c.add_task(f"{tqdm_task(METRICS_TASK)} {shlex.quote(str(release))}")
        # Until every metric has reached the controller (the file is read every half second).
        seen: set[str] = set()
        for event in c.watch(include_usage=False, select=WatchFilter(task_ids=(tid,)), timeout=60):
            if isinstance(event.body, ProgressEvent):
                seen |= {p.name for p in event.body.metrics}
            if EXPECTED <= seen:
                break
        data = dtask_task_json(live, tid)
        assert data["state"] == "running"
        [attempt] = data["attempts"]  # type: ignore[misc]
        metrics = attempt["metrics"]
        assert EXPECTED <= set(metrics), metrics
        assert metrics["loss"][-1][1] == 0.1  # the last postfix tqdm drew
        assert isinstance(metrics["step"][-1][1], int) and metrics["step"][-1][1] == 9
        assert metrics["eval_n"][-1][1] == 12 and isinstance(metrics["eval_n"][-1][1], int)
        assert metrics["eval_acc"][-1][1] == 0.75
        assert metrics["tokens"][-1][1] == 4096 and metrics["gpu_mem"][-1][1] == 3.5
        release.touch()
        [task] = c.wait([tid], timeout=60)
        assert task.state is TaskState.SUCCEEDED, task
        # Kept with the finished attempt in the store.
        kept = {p.name for p in c.task(tid).attempts[-1].metrics}
        assert EXPECTED <= kept, kept
