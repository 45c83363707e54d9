"""The controller's disk fills up: a submission that cannot be stored fails whole with a clear error, the
controller keeps serving, and works again once there is room."""

from __future__ import annotations

from pathlib import Path

import pytest
from dtask_client import ResourceExhausted
from dtask_common.models import TaskSpec, TaskState

from tests.faults.helpers import client, fill_fs, running_on, start_on_small_fs, stop_all
from tests.faults.proxy import proxy_to
from tests.support import LISTEN_RE, free_port_range, runner_proc


def test_submission_on_a_full_disk_fails_whole_and_the_controller_keeps_serving(home: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    lo, hi = free_port_range()
    ctl = start_on_small_fs(
        ["controller", "--host", "127.0.0.1", "--port-range", f"{lo}-{hi}", "--store", str(data / "controller.db")],
        home,
        data,
        size="4m",
    )
    try:
        m = ctl.wait_for(LISTEN_RE.pattern)
        address = f"127.0.0.1:{m.group(2)}"
        with client(home, address, timeout=30) as c:
            c.pause()
            first = c.submit([TaskSpec(name=f"a{i}", shell="true", tags=("a",)) for i in range(100)])
            fill_fs(ctl, data)
            big = [TaskSpec(name=f"b{i}", shell="echo " + "x" * 200, tags=("b",)) for i in range(5000)]
            with pytest.raises(ResourceExhausted) as err:
                c.submit(big)
            assert str(data / "controller.db") in str(err.value) and "full" in str(err.value), err.value
            # Still serving, the failed batch is not there, the earlier one is.
            assert [t.id for t in c.tasks(tag="a")] == first
            assert c.tasks(tag="b") == []
            assert c.queue().pending == 100
            (Path(f"/proc/{ctl.popen.pid}/root") / data.relative_to("/") / "filler").unlink()
            again = c.submit(big)
            assert len(again) == 5000 and c.queue().pending == 5100
        assert not any("Traceback" in line for line in ctl.lines), "".join(ctl.lines)
    finally:
        ctl.stop()


def test_disk_full_while_a_task_runs_then_freed_the_result_lands(home: Path, tmp_path: Path) -> None:
    """The result cannot be stored while the disk is full: the commit rolls back whole, the controller's queue
    stays as the store has it, the runner keeps the unacknowledged result, and it lands (with all the output)
    once there is room again."""
    data = tmp_path / "data"
    lo, hi = free_port_range()
    ctl = start_on_small_fs(
        [
            "--set",
            "controller.dead_after_s=1",
            "--set",
            "controller.lost_after_s=30",
            "controller",
            "--host",
            "127.0.0.1",
            "--port-range",
            f"{lo}-{hi}",
            "--store",
            str(data / "controller.db"),
        ],
        home,
        data,
        size="4m",
    )
    r1 = None
    try:
        m = ctl.wait_for(LISTEN_RE.pattern)
        address = f"127.0.0.1:{m.group(2)}"
        with proxy_to(address) as proxy:
            r1 = runner_proc(home, proxy.address, "r1")
            with client(home, address, timeout=30) as c:
                tid = c.add_task(
                    f"echo start; while [ ! -e {tmp_path}/go ]; do sleep 0.02; done; "
                    "echo '***** m *****'; echo '  value = 3'",
                    name="through-a-full-disk",
                )
                running_on(c, tid)
                r1.wait_for(rf"attempt {tid}/1 started")
                fill_fs(ctl, data)
                (tmp_path / "go").touch()
                r1.wait_for(rf"attempt {tid}/1 succeeded")
                ctl.wait_for(r"executor r1 stream ended: the store .* is full")
                proxy.down()  # hold the runner off while the disk is full
                t = c.task(tid)
                assert t.state is TaskState.RUNNING and t.attempts[0].state is TaskState.RUNNING, t
                assert c.queue().running == 1
                (Path(f"/proc/{ctl.popen.pid}/root") / data.relative_to("/") / "filler").unlink()
                r1.lines.clear()
                proxy.restore()
                r1.wait_for(r"connected to controller .* as r1: 0 running, 1 results to report")
                [t] = c.wait([tid], timeout=20)
                assert t.state is TaskState.SUCCEEDED and t.result == {"value": 3} and len(t.attempts) == 1, t
                assert b"".join(c.logs(tid)) == b"start\n***** m *****\n  value = 3\n"
                assert c.queue().succeeded == 1
        assert not any("Traceback" in line for line in ctl.lines), "".join(ctl.lines)
    finally:
        stop_all(*(p for p in (r1, ctl) if p is not None))
