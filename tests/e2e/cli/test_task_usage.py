"""Per-task usage: a real runner samples a running task that holds 80 MiB; the controller shows it on the
task (`dtask task --json`, `dtask task`) and on Watch (the usage sample's attempts)."""

from __future__ import annotations

import json
import sys

from dtask_common.events import UsageEvent
from dtask_common.models import AttemptUsage

from tests.e2e.cli.conftest import Dtask
from tests.integration.client.cluster import Cluster

HOLD = 80 << 20
PROGRAM = f"b = bytearray(b'x') * {HOLD}; print('holding', flush=True); import time; time.sleep(120)"


def test_running_task_usage_on_watch_and_in_task_json(live: Cluster, dtask: Dtask) -> None:
    done = dtask("submit", "--name", "hold", "--", sys.executable, "-c", PROGRAM)
    assert done.returncode == 0, done.stderr
    task_id = done.stdout.strip()
    try:
        seen: AttemptUsage | None = None
        with live.client() as c:
            for event in c.watch(include_progress=False, timeout=30):
                if isinstance(event.body, UsageEvent):
                    mine = [a for a in event.body.sample.attempts if a.task_id == task_id]
                    if mine and mine[0].rss_bytes >= HOLD:
                        seen = mine[0]
                        break
        assert seen is not None, "no usage sample of the task's attempt on Watch"
        assert seen.attempt == 1 and seen.cpu_time_s > 0 and seen.gpu_memory_bytes is None  # no GPU here
        data = json.loads(dtask("task", task_id, "--json").stdout)
        assert data["state"] == "running"
        assert data["usage"]["attempt"] == 1 and data["usage"]["rss_bytes"] >= HOLD
        assert set(data["usage"]) == {"attempt", "cpu_percent", "rss_bytes", "gpu_memory_bytes", "cpu_time_s"}
        text = dtask("task", task_id).stdout
        assert any(line.startswith("usage") and "memory" in line for line in text.splitlines()), text
    finally:
        dtask("cancel", task_id)
    finished = json.loads(dtask("wait", task_id, "--json", "--timeout", "30").stdout)
    assert finished[0]["usage"] is None  # only a running task has a usage
