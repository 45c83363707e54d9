"""Network cuts between a real runner and a real controller, through a TCP proxy: reset, blackhole,
half-open connections; short cuts keep the attempt, long ones lose it and fence its late result."""

from __future__ import annotations

from pathlib import Path

from dtask_common.models import ExecutorState, TaskState

from tests.faults.helpers import client, controller_proc, running_on, stop_all, until
from tests.faults.proxy import proxy_to
from tests.integration.runner.helpers import gone, wait_file
from tests.support import runner_proc

# Prints a line, then 200 more once `cut` exists (while the link is down), then waits for `go`.
STAGED = (
    "echo before; while [ ! -e {d}/cut ]; do sleep 0.02; done; "
    'i=0; while [ $i -lt 200 ]; do i=$((i+1)); echo "during $i"; done; echo printed > {d}/printed; '
    "while [ ! -e {d}/go ]; do sleep 0.02; done; echo after; "
    "echo '***** eval metrics *****'; echo \"  value = $DTASK_ATTEMPT\""
)
EXPECTED = (
    b"before\n"
    + b"".join(b"during %d\n" % i for i in range(1, 201))
    + (b"after\n***** eval metrics *****\n  value = 1\n")
)


def _cut_and_return(home: Path, tmp_path: Path, mode: str) -> None:
    ctl = controller_proc(home, dead_after_s=1, lost_after_s=8)
    with proxy_to(ctl.address) as proxy:
        r1 = runner_proc(home, proxy.address, "r1")
        try:
            with client(home, ctl.address) as c:
                tid = c.add_task(STAGED.format(d=tmp_path), name="through-the-cut", max_retries=2)
                running_on(c, tid)
                r1.wait_for(rf"attempt {tid}/1 started")
                ctl.lines.clear()
                r1.lines.clear()
                if mode == "down":
                    proxy.down()
                    r1.wait_for(r"unavailable|session with .* ended")
                else:
                    proxy.blackhole()
                ctl.wait_for(r"executor r1 dead", timeout=10)
                assert c.executor("r1").state is ExecutorState.DEAD
                (tmp_path / "cut").touch()  # the task writes output while the link is down
                wait_file(tmp_path / "printed", lines=1)
                t = c.task(tid)
                assert t.state is TaskState.RUNNING and len(t.attempts) == 1
                proxy.restore()
                if mode == "down":
                    r1.wait_for(r"connected to controller .* as r1: 1 running, 0 results", timeout=10)
                    ctl.wait_for(r"executor r1 up")
                else:  # the same connection carries on: nothing was lost, only delayed
                    ctl.wait_for(r"executor r1 alive again", timeout=10)
                assert c.executor("r1").state is not ExecutorState.DEAD
                (tmp_path / "go").touch()
                [t] = c.wait([tid], timeout=20)
                assert t.state is TaskState.SUCCEEDED, t
                assert [a.number for a in t.attempts] == [1] and t.attempts[0].executor == "r1"
                assert t.result == {"value": 1}
                assert b"".join(c.logs(tid)) == EXPECTED
            events = [line for line in ctl.lines if "controller settings:" not in line]  # not the limits at start
            assert not any("queued again" in line or "lost" in line for line in events)
        finally:
            stop_all(r1, ctl)


def test_link_down_past_dead_after_then_back_keeps_the_attempt(home: Path, tmp_path: Path) -> None:
    _cut_and_return(home, tmp_path, "down")


def test_blackhole_past_dead_after_then_back_keeps_the_attempt(home: Path, tmp_path: Path) -> None:
    _cut_and_return(home, tmp_path, "blackhole")


GATED = (
    'echo "attempt $DTASK_ATTEMPT"; while [ ! -e {d}/gate-$DTASK_ATTEMPT ]; do sleep 0.02; done; '
    "echo '***** eval metrics *****'; echo \"  value = $DTASK_ATTEMPT\""
)


def test_blackhole_past_lost_after_requeues_and_fences_the_late_result(home: Path, tmp_path: Path) -> None:
    ctl = controller_proc(home, dead_after_s=1, lost_after_s=2)
    with proxy_to(ctl.address) as proxy:
        r1 = runner_proc(home, proxy.address, "r1")
        r2 = None
        try:
            with client(home, ctl.address) as c:
                tid = c.add_task(GATED.format(d=tmp_path), name="cut-off", max_retries=1)
                assert running_on(c, tid).attempts[0].executor == "r1"
                r1.wait_for(rf"attempt {tid}/1 started")
                r2 = runner_proc(home, ctl.address, "r2")
                proxy.blackhole()
                ctl.wait_for(r"executor r1 dead", timeout=10)
                ctl.wait_for(r"executor r1 gone", timeout=15)
                t = until(c, tid, lambda t: len(t.attempts) == 2 and t.state is TaskState.RUNNING, 10, "requeued")
                assert t.attempts[0].state is TaskState.LOST and t.attempts[1].executor == "r2"
                # Cut off, r1 still runs attempt 1 to its end and keeps the result until acknowledged.
                (tmp_path / "gate-1").touch()
                r1.wait_for(rf"attempt {tid}/1 succeeded")
                r1.lines.clear()
                proxy.restore()
                r1.wait_for(r"connected to controller .* as r1: 0 running, 1 results to report", timeout=20)
                ctl.wait_for(rf"task {tid} attempt 1 report ignored")
                t = until(c, tid, lambda t: t.attempts[0].state is TaskState.SUCCEEDED, 10, "late result recorded")
                assert t.state is TaskState.RUNNING and t.result is None and t.attempts[0].result == {"value": 1}
                assert len(t.attempts) == 2 and t.attempts[1].state is TaskState.RUNNING
                (tmp_path / "gate-2").touch()
                [t] = c.wait([tid], timeout=20)
                assert t.state is TaskState.SUCCEEDED and t.result == {"value": 2}
                assert [a.executor for a in t.attempts] == ["r1", "r2"]
                assert t.attempts[0].result == {"value": 1}
        finally:
            stop_all(*(p for p in (r1, r2, ctl) if p is not None))


def test_half_open_connection_runner_reconnects_before_the_attempt_is_lost(home: Path, tmp_path: Path) -> None:
    """The old connection silently drops everything, new ones work: keepalive notices within ~11 s (6 s
    keepalive + 5 s ping timeout) and the runner reconnects before the controller gives the attempt up."""
    ctl = controller_proc(home, dead_after_s=1, lost_after_s=8)
    with proxy_to(ctl.address) as proxy:
        r1 = runner_proc(home, proxy.address, "r1")
        try:
            with client(home, ctl.address) as c:
                tid = c.add_task(GATED.format(d=tmp_path), name="half-open", max_retries=1)
                running_on(c, tid)
                r1.wait_for(rf"attempt {tid}/1 started")
                r1.lines.clear()
                ctl.lines.clear()
                proxy.half_open()
                ctl.wait_for(r"executor r1 dead", timeout=10)
                r1.wait_for(r"unavailable: .*ping timeout", timeout=14)
                r1.wait_for(r"connected to controller .* as r1: 1 running", timeout=5)
                ctl.wait_for(r"executor r1 up")
                (tmp_path / "gate-1").touch()
                [t] = c.wait([tid], timeout=20)
                assert t.state is TaskState.SUCCEEDED and [a.number for a in t.attempts] == [1]
                assert t.result == {"value": 1}
            assert not any("queued again" in line for line in ctl.lines)
        finally:
            stop_all(r1, ctl)


def test_flapping_link_loses_no_output_and_runs_the_attempt_once(home: Path, tmp_path: Path) -> None:
    """Connections reset every 0.3 s while the task prints: one attempt, every byte once, in order."""
    ctl = controller_proc(home, dead_after_s=1, lost_after_s=8)
    with proxy_to(ctl.address) as proxy:
        r1 = runner_proc(home, proxy.address, "r1")
        try:
            with client(home, ctl.address) as c:
                tid = c.add_task(
                    f'i=0; while [ $i -lt 300 ]; do i=$((i+1)); echo "line $i"; sleep 0.01; done; '
                    f"while [ ! -e {tmp_path}/go ]; do sleep 0.02; done; echo done",
                    name="flapping",
                    max_retries=2,
                )
                running_on(c, tid)
                r1.wait_for(rf"attempt {tid}/1 started")  # the first reset must find the attempt on the runner
                resets = 0
                for _ in range(10):
                    r1.lines.clear()
                    resets += proxy.reset()
                    r1.wait_for(r"connected to controller .* as r1: 1 running", timeout=10)
                assert resets >= 10
                (tmp_path / "go").touch()
                [t] = c.wait([tid], timeout=20)
                assert t.state is TaskState.SUCCEEDED and [a.number for a in t.attempts] == [1], t
                expected = b"".join(b"line %d\n" % i for i in range(1, 301)) + b"done\n"
                assert b"".join(c.logs(tid)) == expected
        finally:
            stop_all(r1, ctl)


def test_result_delivered_but_ack_lost_lands_once(home: Path, tmp_path: Path) -> None:
    """Controller → runner is cut while the attempt ends: the controller has the result, the runner never
    sees the ack, reconnects and reports it again in its Hello; nothing is counted or changed twice."""
    ctl = controller_proc(home, dead_after_s=1, lost_after_s=8)
    with proxy_to(ctl.address) as proxy:
        r1 = runner_proc(home, proxy.address, "r1")
        try:
            with client(home, ctl.address) as c:
                tid = c.add_task(GATED.format(d=tmp_path), name="ack-lost", max_retries=2)
                running_on(c, tid)
                r1.wait_for(rf"attempt {tid}/1 started")
                proxy.blackhole("down")
                (tmp_path / "gate-1").touch()
                ctl.wait_for(rf"task {tid} succeeded")
                r1.lines.clear()
                proxy.reset()
                proxy.restore()
                r1.wait_for(r"connected to controller .* as r1: 0 running, 1 results to report", timeout=10)
                ctl.wait_for(rf"task {tid} attempt 1 report ignored")
                for _ in range(5):  # the ack may itself be cut by the next reset: then the report comes again
                    r1.lines.clear()
                    proxy.reset()
                    m = r1.wait_for(r"connected to controller .* as r1: 0 running, (\d+) results to report", timeout=10)
                    if m.group(1) == "0":
                        break
                assert m.group(1) == "0", "the repeated report was never acknowledged"
                t = c.task(tid)
                assert t.state is TaskState.SUCCEEDED and [a.number for a in t.attempts] == [1], t
                assert t.result == {"value": 1} and t.attempts[0].state is TaskState.SUCCEEDED
                q = c.queue()
                assert (q.succeeded, q.pending, q.running) == (1, 0, 0), q
        finally:
            stop_all(r1, ctl)


def test_runner_back_after_lost_with_the_attempt_still_running_is_told_to_stop_it(home: Path, tmp_path: Path) -> None:
    """Cut off past lost_after_s, r1 comes back still running attempt 1 (superseded by attempt 2 on r2): the
    controller cancels it there, its CANCELLED report is recorded, and the task ends with attempt 2's result."""
    ctl = controller_proc(home, dead_after_s=1, lost_after_s=2)
    with proxy_to(ctl.address) as proxy:
        r1 = runner_proc(home, proxy.address, "r1")
        r2 = None
        try:
            with client(home, ctl.address) as c:
                tid = c.add_task(
                    "echo $$ > " + str(tmp_path) + "/pid-$DTASK_ATTEMPT; " + GATED.format(d=tmp_path),
                    name="superseded",
                    max_retries=1,
                )
                assert running_on(c, tid).attempts[0].executor == "r1"
                r1.wait_for(rf"attempt {tid}/1 started")
                r2 = runner_proc(home, ctl.address, "r2")
                proxy.blackhole()
                ctl.wait_for(r"executor r1 gone", timeout=15)
                until(c, tid, lambda t: len(t.attempts) == 2 and t.attempts[1].executor == "r2", 10, "requeued")
                pid = int(wait_file(tmp_path / "pid-1", lines=1))
                r1.lines.clear()
                proxy.restore()
                r1.wait_for(r"connected to controller .* as r1: 1 running", timeout=20)
                r1.wait_for(rf"cancelling attempt {tid}/1: this attempt is not current")
                assert gone([pid])
                t = until(c, tid, lambda t: t.attempts[0].state is TaskState.CANCELLED, 10, "cancel recorded")
                assert t.state is TaskState.RUNNING and t.attempts[1].state is TaskState.RUNNING
                (tmp_path / "gate-2").touch()
                [t] = c.wait([tid], timeout=20)
                assert t.state is TaskState.SUCCEEDED and t.result == {"value": 2}
                assert [a.state for a in t.attempts] == [TaskState.CANCELLED, TaskState.SUCCEEDED]
        finally:
            stop_all(*(p for p in (r1, r2, ctl) if p is not None))
