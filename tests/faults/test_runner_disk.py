"""A runner whose log dir is read-only refuses to start clearly; a log that cannot be written (disk full) fails
the attempt with the reason instead of running blind or hanging."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from dtask_common.models import TaskState

from tests.faults.helpers import (
    assert_clear_error,
    client,
    controller_proc,
    exit_output,
    fill_fs,
    start_in_readonly_view,
    start_on_small_fs,
    stop_all,
)
from tests.support import free_port_range, runner_proc, start_dtask


def runner_args(controller: str, log_dir: Path) -> list[str]:
    lo, hi = free_port_range()
    return [
        "runner",
        "--controller",
        controller,
        "--name",
        "r1",
        "--host",
        "127.0.0.1",
        "--port-range",
        f"{lo}-{hi}",
        "--log-dir",
        str(log_dir),
    ]


def test_read_only_log_dir_refuses_to_start(home: Path, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    proc = start_in_readonly_view(runner_args("127.0.0.1:1", logs), home, logs)
    rc, out = exit_output(proc)
    assert_clear_error(rc, out, str(logs), "--log-dir")


def test_log_dir_that_is_a_file_refuses_to_start(home: Path, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.write_text("a file\n")
    rc, out = exit_output(start_dtask(runner_args("127.0.0.1:1", logs), home, listen=False))
    assert_clear_error(rc, out, str(logs), "--log-dir")


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("command", ["echo hello; sleep 0.2; echo bye", "while :; do echo spam; done"])
def test_full_disk_fails_the_attempt_with_the_reason(home: Path, tmp_path: Path, command: str) -> None:
    """The attempt's log file is /dev/full: every write gets ENOSPC, as on a full disk."""
    logs = tmp_path / "logs"
    logs.mkdir()
    ctl = controller_proc(home)
    r1 = runner_proc(home, ctl.address, "r1", "--log-dir", str(logs))
    try:
        with client(home, ctl.address) as c:
            c.pause()
            tid = c.add_task(command, name="no-space")
            (logs / f"{tid}.1.log").symlink_to("/dev/full")
            c.resume()
            [t] = c.wait([tid], timeout=15)
            assert t.state is TaskState.FAILED, t
            error = t.attempts[0].error
            assert "No space left on device" in error and str(logs) in error, error
        r1.wait_for(rf"attempt {tid}/1 failed")
        assert not any("Traceback" in line for line in r1.lines), "".join(r1.lines)
    finally:
        stop_all(r1, ctl)


def test_full_disk_for_results_still_reports_the_result(home: Path, tmp_path: Path) -> None:
    """The runner's result journal cannot grow: the result is still reported (held in memory), nothing hangs."""
    ctl = controller_proc(home)
    results = home / "runner" / "r1" / "results"
    lo, hi = free_port_range()
    r1 = start_on_small_fs(
        [
            "--set",
            "runner.reconnect_max_s=0.5",
            "runner",
            "--controller",
            ctl.address,
            "--name",
            "r1",
            "--host",
            "127.0.0.1",
            "--port-range",
            f"{lo}-{hi}",
            "--log-dir",
            str(tmp_path / "logs"),
        ],
        home,
        results,
    )
    try:
        r1.wait_for(r"connected to controller .* as r1")
        assert fill_fs(r1, results) > 0
        with client(home, ctl.address) as c:
            tid = c.add_task("echo '***** m *****'; echo '  value = 7'", name="no-room-for-results")
            [t] = c.wait([tid], timeout=15)
            assert t.state is TaskState.SUCCEEDED and t.result == {"value": 7}, t
        r1.wait_for(rf"ERROR .*result of attempt {tid}/1.*No space left on device")
        assert not any("Traceback" in line for line in r1.lines), "".join(r1.lines)
    finally:
        stop_all(r1, ctl)


def test_log_file_deleted_while_the_attempt_runs(home: Path, tmp_path: Path) -> None:
    """Someone cleans the log dir under a running attempt: the output from then on is gone, the result is not."""
    logs = tmp_path / "logs"
    ctl = controller_proc(home)
    r1 = runner_proc(home, ctl.address, "r1", "--log-dir", str(logs))
    try:
        with client(home, ctl.address) as c:
            tid = c.add_task(
                f"while [ ! -e {tmp_path}/go ]; do sleep 0.02; done; echo '***** m *****'; echo '  value = 9'",
                name="log-deleted",
            )
            r1.wait_for(rf"attempt {tid}/1 started")
            (logs / f"{tid}.1.log").unlink()
            (tmp_path / "go").touch()
            [t] = c.wait([tid], timeout=15)
            assert t.state is TaskState.SUCCEEDED and t.result == {"value": 9}, t
        assert not any("Traceback" in line for line in r1.lines), "".join(r1.lines)
    finally:
        stop_all(r1, ctl)
