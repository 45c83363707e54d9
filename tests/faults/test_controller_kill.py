"""kill -9 of the controller while a task prints: after the restart the runner sends on from what the store
kept, so the controller's copy of the output is complete, and the attempt runs once."""

from __future__ import annotations

import contextlib
import signal
import time
from pathlib import Path

from dtask_common.models import TaskSpec, TaskState

from tests.faults.helpers import client, controller_proc, running_on, stop_all
from tests.support import free_port_range, runner_proc


def test_output_complete_after_controller_kill9_mid_stream(home: Path, tmp_path: Path) -> None:
    port_range = free_port_range()
    ctl = controller_proc(home, port_range=port_range, dead_after_s=1, lost_after_s=10)
    r1 = runner_proc(home, ctl.address, "r1")
    try:
        with client(home, ctl.address) as c:
            tid = c.add_task(
                f'i=0; while [ $i -lt 400 ]; do i=$((i+1)); echo "line $i"; sleep 0.005; done; '
                f"while [ ! -e {tmp_path}/go ]; do sleep 0.02; done; echo done",
                name="printer",
            )
            running_on(c, tid)
            deadline = time.monotonic() + 20
            while b"line 100\n" not in b"".join(c.logs(tid)):  # bounded: output has no event of its own here
                assert time.monotonic() < deadline, "no output reached the controller"
                time.sleep(0.02)
        r1.lines.clear()
        ctl.kill9()
        r1.wait_for(r"unavailable|session with .* ended")
        ctl = controller_proc(home, port_range=port_range, dead_after_s=1, lost_after_s=10)
        r1.wait_for(r"connected to controller .* as r1: 1 running", timeout=15)
        (tmp_path / "go").touch()
        with client(home, ctl.address) as c:
            [t] = c.wait([tid], timeout=20)
            assert t.state is TaskState.SUCCEEDED and [a.number for a in t.attempts] == [1], t
            expected = b"".join(b"line %d\n" % i for i in range(1, 401)) + b"done\n"
            assert b"".join(c.logs(tid)) == expected
    finally:
        stop_all(r1, ctl)


def test_controller_kill9_during_a_dispatch_burst_fails_no_task(home: Path) -> None:
    """Assignments committed but never sent when the controller died: the same runner process does not know
    them, so they are queued again without using a retry; with max_retries = 0 every task still succeeds."""
    port_range = free_port_range()
    ctl = controller_proc(home, port_range=port_range, dead_after_s=1, lost_after_s=10)
    r1 = runner_proc(home, ctl.address, "r1", "--slots", "8")
    try:
        with client(home, ctl.address) as c:
            ids = c.submit([TaskSpec(name=f"t{i}", shell="true", max_retries=0) for i in range(600)])
            deadline = time.monotonic() + 30
            while c.queue().succeeded < 150:  # bounded: kill in the middle of the burst
                assert time.monotonic() < deadline
                time.sleep(0.01)
        ctl.kill9()
        ctl = controller_proc(home, port_range=port_range, dead_after_s=1, lost_after_s=10)
        with client(home, ctl.address) as c:
            tasks = c.wait(ids, timeout=60)
        assert all(t.state is TaskState.SUCCEEDED for t in tasks), [
            t for t in tasks if t.state is not TaskState.SUCCEEDED
        ]
        for t in tasks:
            *before, last = t.attempts
            assert last.state is TaskState.SUCCEEDED
            assert all(a.state is TaskState.LOST and "never got" in a.error for a in before), [
                (a.state, a.error) for a in t.attempts
            ]
    finally:
        stop_all(r1, ctl)


def test_controller_frozen_past_lost_after_loses_nothing(home: Path, tmp_path: Path) -> None:
    """The controller itself stops (SIGSTOP: a paused VM, a suspended laptop) for longer than 2 x lost_after_s:
    when it runs again, its runners were not the ones away; nothing is lost or run twice."""
    ctl = controller_proc(home, dead_after_s=1, lost_after_s=1.5)
    r1 = runner_proc(home, ctl.address, "r1")
    try:
        with client(home, ctl.address) as c:
            tid = c.add_task(
                f"while [ ! -e {tmp_path}/go ]; do sleep 0.02; done; echo '***** m *****'; echo '  value = 5'",
                name="outlives-a-pause",
                max_retries=1,
            )
            running_on(c, tid)
            r1.wait_for(rf"attempt {tid}/1 started")
            ctl.popen.send_signal(signal.SIGSTOP)
            time.sleep(4)  # the fault itself is a span of time: no event to wait for
            ctl.popen.send_signal(signal.SIGCONT)
            ctl.wait_for(r"the controller stood still for")
            (tmp_path / "go").touch()
            [t] = c.wait([tid], timeout=20)
            assert t.state is TaskState.SUCCEEDED and [a.number for a in t.attempts] == [1], t
            assert t.result == {"value": 5}
        events = [line for line in ctl.lines if "controller settings:" not in line]  # not the limits it logs at start
        assert not any("gone" in line or "lost" in line for line in events), "".join(ctl.lines)
    finally:
        with contextlib.suppress(ProcessLookupError):
            ctl.popen.send_signal(signal.SIGCONT)
        stop_all(r1, ctl)
