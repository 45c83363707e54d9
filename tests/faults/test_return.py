"""A runner cut off past lost_after_s comes back: its attempt is taken back when nothing newer started (no
rerun, no output gap, the retry given back), also after a controller restart, stopped when a newer one runs;
per-task lost_after_s; the stale marker while out of touch."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from dtask_common.models import ExecutorState, TaskState

from tests.faults.helpers import client, controller_proc, running_on, stop_all, until
from tests.faults.proxy import proxy_to
from tests.support import BIN, free_port_range, runner_proc

# Prints a line, 300 more while the link is down (once `cut` exists), then waits for `go`.
STAGED = (
    "echo before; while [ ! -e {d}/cut ]; do sleep 0.02; done; "
    'i=0; while [ $i -lt 300 ]; do i=$((i+1)); echo "during $i"; done; echo printed > {d}/printed; '
    "while [ ! -e {d}/go ]; do sleep 0.02; done; echo after; "
    "echo '***** eval metrics *****'; echo \"  value = $DTASK_ATTEMPT\""
)
EXPECTED = (
    b"before\n"
    + b"".join(b"during %d\n" % i for i in range(1, 301))
    + (b"after\n***** eval metrics *****\n  value = 1\n")
)


def _retries_used(home: Path, task_id: str) -> int:
    with sqlite3.connect(f"file:{home / 'controller.db'}?mode=ro", uri=True) as db:
        return int(db.execute("SELECT retries_used FROM tasks WHERE id = ?", (int(task_id),)).fetchone()[0])


def _wait_file(path: Path, proc_lines: list[str], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never written:\n{''.join(proc_lines)}"
        time.sleep(0.02)


def test_cut_past_lost_after_with_nothing_newer_started_takes_the_attempt_back(home: Path, tmp_path: Path) -> None:
    """The attempt is LOST and queued again while cut off; the runner returns still running it: the controller
    takes it back (one attempt, no retry used), and its output has no hole: byte-identical to the runner's log."""
    ctl = controller_proc(home, dead_after_s=0.5, lost_after_s=1.5)
    with proxy_to(ctl.address) as proxy:
        r1 = runner_proc(home, proxy.address, "r1")
        try:
            with client(home, ctl.address) as c:
                tid = c.add_task(STAGED.format(d=tmp_path), name="taken-back", max_retries=1)
                running_on(c, tid)
                r1.wait_for(rf"attempt {tid}/1 started")
                proxy.down()
                ctl.wait_for(rf"task {tid} attempt 1 lost, queued again", timeout=15)
                t = c.task(tid)
                assert t.state is TaskState.PENDING and t.attempts[0].state is TaskState.LOST
                assert t.executor == "" and t.dispatched_at is None  # queued: no executor, no growing duration
                (tmp_path / "cut").touch()  # output the controller misses: only the runner's log has it
                _wait_file(tmp_path / "printed", r1.lines)
                r1.lines.clear()
                proxy.restore()
                r1.wait_for(r"connected to controller .* as r1: 1 running, 0 results", timeout=15)
                ctl.wait_for(rf"task {tid} attempt 1 taken back: executor r1 returned with it")
                t = until(c, tid, lambda t: t.state is TaskState.RUNNING, 10, "running again")
                assert [(a.number, a.state, a.executor) for a in t.attempts] == [(1, TaskState.RUNNING, "r1")]
                assert t.stale_since is None
                (tmp_path / "go").touch()
                [t] = c.wait([tid], timeout=20)
                assert t.state is TaskState.SUCCEEDED and [a.number for a in t.attempts] == [1], t
                assert t.result == {"value": 1}
                runner_log = (home / "runner" / "r1" / "logs" / f"{tid}.1.log").read_bytes()
                assert runner_log == EXPECTED
                assert b"".join(c.logs(tid)) == runner_log
            assert not any("not current" in line or "refused" in line for line in r1.lines)
            assert _retries_used(home, tid) == 0
        finally:
            stop_all(r1, ctl)


def test_result_of_a_lost_attempt_reported_on_return_is_the_tasks_result(home: Path, tmp_path: Path) -> None:
    """The attempt ends while cut off past lost_after_s; nothing newer started: its result, reported in the
    Hello, is applied (no rerun), and the output it printed while cut off reaches the controller."""
    ctl = controller_proc(home, dead_after_s=0.5, lost_after_s=1.5)
    with proxy_to(ctl.address) as proxy:
        r1 = runner_proc(home, proxy.address, "r1")
        try:
            with client(home, ctl.address) as c:
                tid = c.add_task(STAGED.format(d=tmp_path), name="late-result", max_retries=1)
                running_on(c, tid)
                r1.wait_for(rf"attempt {tid}/1 started")
                proxy.down()
                ctl.wait_for(rf"task {tid} attempt 1 lost, queued again", timeout=15)
                (tmp_path / "cut").touch()
                (tmp_path / "go").touch()
                r1.wait_for(rf"attempt {tid}/1 succeeded")
                proxy.restore()
                [t] = c.wait([tid], timeout=20)
                assert t.state is TaskState.SUCCEEDED and t.result == {"value": 1}, t
                assert [(a.number, a.state) for a in t.attempts] == [(1, TaskState.SUCCEEDED)]
                until(c, tid, lambda t: b"".join(c.logs(tid)) == EXPECTED, 10, "the whole output")
            assert _retries_used(home, tid) == 0
        finally:
            stop_all(r1, ctl)


# Traps SIGTERM and takes a moment to stop: a superseded attempt still holds its slot while it ends.
SLOW_STOP = (
    "trap 'sleep 0.5; echo stopped; exit 143' TERM; echo \"attempt $DTASK_ATTEMPT\"; "
    "while [ ! -e {d}/gate-$DTASK_ATTEMPT ]; do sleep 0.02; done; "
    "echo '***** eval metrics *****'; echo \"  value = $DTASK_ATTEMPT\""
)


def test_cut_with_a_replacement_running_stops_the_old_attempt_and_no_slot_runs_two(home: Path, tmp_path: Path) -> None:
    """Attempt 2 runs on r2 when r1 returns with attempt 1: r1 is told to stop it, its late result is recorded
    as superseded, and r1's slot is not given other work until attempt 1 has ended there."""
    ctl = controller_proc(home, dead_after_s=0.5, lost_after_s=1.5)
    with proxy_to(ctl.address) as proxy:
        r1 = runner_proc(home, proxy.address, "r1", "--slots", "1")
        r2 = None
        try:
            with client(home, ctl.address) as c:
                tid = c.add_task(SLOW_STOP.format(d=tmp_path), name="superseded", max_retries=1)
                assert running_on(c, tid).attempts[0].executor == "r1"
                r1.wait_for(rf"attempt {tid}/1 started")
                r2 = runner_proc(home, ctl.address, "r2", "--slots", "1")
                proxy.down()
                t = until(c, tid, lambda t: len(t.attempts) == 2 and t.state is TaskState.RUNNING, 15, "retried")
                assert t.attempts[1].executor == "r2"
                other = c.add_task("echo other", name="other")  # waits: r2 is busy, r1 out of touch
                r1.lines.clear()
                proxy.restore()
                r1.wait_for(rf"cancelling attempt {tid}/1: this attempt is not current", timeout=15)
                r1.wait_for(rf"attempt {tid}/1 cancelled")
                [o] = c.wait([other], timeout=20)
                assert o.state is TaskState.SUCCEEDED and o.attempts[0].executor == "r1"
                t = until(c, tid, lambda t: t.attempts[0].state is TaskState.CANCELLED, 10, "superseded recorded")
                assert o.attempts[0].dispatched_at >= t.attempts[0].finished_at  # one slot, one attempt
                assert t.state is TaskState.RUNNING and t.attempts[1].state is TaskState.RUNNING
                (tmp_path / "gate-2").touch()
                [t] = c.wait([tid], timeout=20)
                assert t.state is TaskState.SUCCEEDED and t.result == {"value": 2}
                assert [a.state for a in t.attempts] == [TaskState.CANCELLED, TaskState.SUCCEEDED]
            assert not any("running it anyway" in line or "refused" in line for line in r1.lines)
        finally:
            stop_all(*(p for p in (r1, r2, ctl) if p is not None))


GATED = (
    'echo "attempt $DTASK_ATTEMPT"; while [ ! -e {d}/gate-$DTASK_TASK_ID ]; do sleep 0.02; done; '
    "echo '***** eval metrics *****'; echo \"  value = $DTASK_ATTEMPT\""
)


def test_per_task_lost_after_overrides_the_controller_default_both_ways(home: Path, tmp_path: Path) -> None:
    """Default 3 s: a task with lost_after_s = 1 is lost after 1 s out of touch, one with 60 s is not lost (nor
    its executor gone) after more than the default; both carry on when the runner returns."""
    ctl = controller_proc(home, dead_after_s=0.5, lost_after_s=3)
    with proxy_to(ctl.address) as proxy:
        r1 = runner_proc(home, proxy.address, "r1", "--slots", "2")
        try:
            with client(home, ctl.address) as c:
                short = c.add_task(GATED.format(d=tmp_path), name="short", max_retries=1, lost_after_s=1)
                long = c.add_task(GATED.format(d=tmp_path), name="long", max_retries=1, lost_after_s=60)
                for tid in (short, long):
                    running_on(c, tid)
                    r1.wait_for(rf"attempt {tid}/1 started")
                proxy.down()
                ctl.wait_for(
                    rf"task {short} attempt 1 lost, queued again: executor r1 is gone \(no session for 1s\)", timeout=10
                )
                assert c.task(long).state is TaskState.RUNNING
                ctl.lines.clear()
                time.sleep(3.5)  # past the default (3 s): nothing may happen, so there is no event to await

                t = c.task(long)
                assert t.state is TaskState.RUNNING and len(t.attempts) == 1 and t.stale_since is not None
                assert c.executor("r1").state is ExecutorState.DEAD
                assert not any("gone" in line for line in ctl.lines), [line for line in ctl.lines if "gone" in line]
                proxy.restore()
                ctl.wait_for(rf"task {short} attempt 1 taken back", timeout=15)
                for tid in (short, long):
                    (tmp_path / f"gate-{tid}").touch()
                done = c.wait([short, long], timeout=20)
                assert [t.state for t in done] == [TaskState.SUCCEEDED] * 2
                assert all([a.number for a in t.attempts] == [1] for t in done)
        finally:
            stop_all(r1, ctl)


def test_stale_marker_while_the_runner_is_out_of_touch(home: Path, tmp_path: Path) -> None:
    """`dtask task --json` and the Task model carry stale_since while the runner is dead, and lose it on return."""
    ctl = controller_proc(home, dead_after_s=0.5, lost_after_s=30)
    with proxy_to(ctl.address) as proxy:
        r1 = runner_proc(home, proxy.address, "r1")
        try:
            with client(home, ctl.address) as c:
                tid = c.add_task(GATED.format(d=tmp_path), name="stale")
                t = running_on(c, tid)
                r1.wait_for(rf"attempt {tid}/1 started")
                assert t.stale_since is None
                proxy.down()
                t = until(c, tid, lambda t: t.stale_since is not None, 10, "stale")
                assert t.state is TaskState.RUNNING
                env = {"DTASK_HOME": str(home), "PATH": str(BIN)}
                out = subprocess.run(
                    [str(BIN / "dtask"), "--controller", ctl.address, "task", tid, "--json"],
                    capture_output=True,
                    text=True,
                    env=env,
                    timeout=30,
                )
                assert out.returncode == 0, out.stderr
                assert json.loads(out.stdout)["stale_since"]
                out = subprocess.run(
                    [str(BIN / "dtask"), "--controller", ctl.address, "tasks"],
                    capture_output=True,
                    text=True,
                    env=env,
                    timeout=30,
                )
                assert "stale" in out.stdout, out.stdout
                proxy.restore()
                until(c, tid, lambda t: t.stale_since is None, 15, "fresh again")
                (tmp_path / f"gate-{tid}").touch()
                [t] = c.wait([tid], timeout=20)
                assert t.state is TaskState.SUCCEEDED
        finally:
            stop_all(r1, ctl)


@pytest.mark.parametrize("stop", ["kill9", "sigterm"])
def test_take_back_after_a_controller_restart(home: Path, tmp_path: Path, stop: str) -> None:
    """The attempt is LOST and its task pending when the controller stops (kill -9 or a normal stop) and starts
    again on the same store: the runner returns with the attempt and it is taken back (one attempt, no retry
    used, the task succeeds with its result)."""
    port_range = free_port_range()
    ctl = controller_proc(home, port_range=port_range, dead_after_s=0.5, lost_after_s=1.5)
    with proxy_to(ctl.address) as proxy:
        r1 = runner_proc(home, proxy.address, "r1")
        try:
            with client(home, ctl.address) as c:
                tid = c.add_task(GATED.format(d=tmp_path), name="taken-back-after-restart", max_retries=1)
                running_on(c, tid)
                r1.wait_for(rf"attempt {tid}/1 started")
                proxy.down()
                ctl.wait_for(rf"task {tid} attempt 1 lost, queued again", timeout=15)
                t = c.task(tid)
                assert t.state is TaskState.PENDING and t.attempts[0].state is TaskState.LOST
            assert _retries_used(home, tid) == 1
            address = ctl.address
            if stop == "kill9":
                ctl.kill9()
            else:
                assert ctl.stop() == 0
            ctl = controller_proc(home, port_range=port_range, dead_after_s=0.5, lost_after_s=1.5)
            assert ctl.address == address  # the proxy still leads there
            proxy.restore()
            r1.wait_for(r"connected to controller .* as r1: 1 running, 0 results", timeout=15)
            ctl.wait_for(rf"task {tid} attempt 1 taken back: executor r1 returned with it")
            with client(home, ctl.address) as c:
                t = until(c, tid, lambda t: t.state is TaskState.RUNNING, 10, "running again")
                assert [(a.number, a.state, a.executor) for a in t.attempts] == [(1, TaskState.RUNNING, "r1")]
                assert _retries_used(home, tid) == 0
                (tmp_path / f"gate-{tid}").touch()
                [t] = c.wait([tid], timeout=20)
                assert t.state is TaskState.SUCCEEDED and [a.number for a in t.attempts] == [1], t
                assert t.result == {"value": 1}
            assert _retries_used(home, tid) == 0
            assert not any("not current" in line or "refused" in line for line in r1.lines)
        finally:
            stop_all(r1, ctl)
