"""Runner log retention with a real runner: old logs go (at start, and by size after an attempt ends), current
ones stay: recent logs, a running attempt's log, and the log of a result the controller has not acknowledged
(its journal entry), however old. Old files are made by setting their mtimes."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from dtask_client import Controller
from dtask_common.models import TaskState

from tests.support import free_port_range, runner_proc, start_controller, start_dtask

DAY = 86400.0


def aged(path: Path, text: str, days: float) -> Path:
    path.write_text(text)
    at = time.time() - days * DAY
    os.utime(path, (at, at))
    return path


def unacknowledged(results_dir: Path, task_id: str, attempt: int, days: float) -> None:
    """A finished attempt the controller never acknowledged, as the runner's journal holds it."""
    results_dir.mkdir(parents=True, mode=0o700)
    at = time.time() - days * DAY
    put = {"task_id": task_id, "attempt": attempt, "state": "succeeded", "started_at": at - 1, "finished_at": at}
    (results_dir / "results.jsonl").write_text(json.dumps({"put": put}) + "\n")


def test_old_logs_go_at_start_and_current_ones_stay(home: Path) -> None:
    state = home / "runner" / "r1"
    logs = state / "logs"
    logs.mkdir(parents=True, mode=0o700)
    old = [aged(logs / f"{i}.1.log", "old output\n", 40) for i in (1, 2)]
    old_result = aged(logs / "1.1.result.json", "{}", 40)
    old_retried = aged(logs / "2.2.log", "old output\n", 31)
    recent = aged(logs / "3.1.log", "recent output\n", 29)
    held = aged(logs / "4.1.log", "not acknowledged\n", 90)
    unacknowledged(state / "results", "4", 1, 90)
    other = aged(logs / "notes.txt", "not an attempt log\n", 90)
    lo, hi = free_port_range()
    nobody = free_port_range(1)[0]  # no controller there: the runner starts and keeps trying to connect
    runner = start_dtask(
        ["--set", "runner.log_retention_days=30", "runner", "--controller", f"127.0.0.1:{nobody}", "--name", "r1"]
        + ["--host", "127.0.0.1", "--port-range", f"{lo}-{hi}"],
        home,
    )
    try:
        runner.wait_for(r"log retention: removed 3 attempt logs \(\d+ bytes\)")
        assert not any(p.exists() for p in (*old, old_result, old_retried))
        assert recent.exists() and held.exists() and other.exists()
        assert "log retention: 30 days, no size limit" in "".join(runner.lines)
    finally:
        runner.stop()


def test_size_limit_removes_the_oldest_and_never_a_running_attempts_log(home: Path) -> None:
    logs = home / "runner" / "r1" / "logs"
    logs.mkdir(parents=True, mode=0o700)
    oldest = aged(logs / "900.1.log", "x" * 600, 3)
    older = aged(logs / "901.1.log", "x" * 600, 2)
    ctl = start_controller(home)
    try:
        runner = runner_proc(home, ctl.address, "r1", "--slots", "2", settings=("runner.log_max_bytes=1000",))
        try:
            runner.wait_for(r"log retention: removed 1 attempt log \(600 bytes\); 600 bytes of logs kept")
            assert not oldest.exists() and older.exists()
            with Controller(ctl.address, certs=home / "certs", timeout=10) as c:
                long = c.add_task(shell="echo started; exec sleep 60", name="long")
                assert b"started" in next(iter(c.logs(long, follow=True)))  # it runs
                big = c.add_task(shell="head -c 2000 /dev/zero | tr '\\0' y", name="big")
                assert c.wait([big], timeout=30)[0].state is TaskState.SUCCEEDED
                # the sweep after big ended (not the one at start): 901 goes, and big too once acknowledged
                runner.wait_for(r"log retention: removed (1 attempt log \(600 bytes\); (?!600 )|2 attempt logs \(2600)")
                assert not older.exists()
                assert (logs / f"{long}.1.log").read_text() == "started\n"  # running: kept
                assert c.task(long).state is TaskState.RUNNING
                c.cancel(long)
        finally:
            runner.stop()
    finally:
        ctl.stop()
