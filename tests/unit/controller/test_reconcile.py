"""Reconciling a returning runner with a fake clock and a real SQLite file: take back, stop, hold, poison."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

from dtask_common import events as ev
from dtask_common.config import Config
from dtask_common.models import AttemptResult, Capacity, Resources, RunningAttempt, TaskSpec, TaskState
from dtask_controller import commands, lifecycle, liveness, queries, recovery, reports
from dtask_controller.core import ControllerCore
from dtask_controller.output import OutputTails
from dtask_controller.poison import Deaths
from dtask_controller.reconcile import Verdict, verdict
from dtask_controller.runner_messages import AssignCmd, CancelCmd, Hello, Session, WelcomeCmd
from dtask_controller.scheduler import Scheduler
from dtask_controller.settings import Settings
from dtask_controller.store import SqliteStore


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _core(tmp_path: Path, clock: Clock, **kw: object) -> ControllerCore:
    settings = replace(Settings.from_config(Config()), dead_after_s=3, lost_after_s=10, **kw)  # type: ignore[arg-type]
    e = ControllerCore(SqliteStore(tmp_path / "c.db"), settings, clock)
    recovery.restore(e)
    return e


def _drain(s: Session) -> list[object]:
    out = []
    while not s.outbox.empty():
        out.append(s.outbox.get_nowait())
    return out


async def _settle() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


def _hello(name: str = "r1", slots: int = 1, instance: str = "p1", **kw: object) -> Hello:
    return Hello(name, capacity=Capacity(slots=slots, gpus=(0,)), protocol_version=1, instance_id=instance, **kw)  # type: ignore[arg-type]


def _lose(e: ControllerCore, clock: Clock, s: Session, seconds: float = 11) -> None:
    reports.disconnected(e, s)
    clock.t += seconds
    liveness.check(e)


def test_a_runner_back_with_a_lost_attempt_gets_it_back_with_its_retry_and_one_task_event(tmp_path: Path) -> None:
    async def go() -> None:
        clock = Clock()
        e = _core(tmp_path, clock)
        s = reports.connected(e, _hello())
        (tid,) = commands.submit(e, [TaskSpec(name="a", shell="true", max_retries=1, resources=Resources(gpus=1))])
        await _settle()
        reports.output(e, tid, 1, 0, b"line 1\n")
        _lose(e, clock, s)
        t = queries.task(e, tid)
        assert t.state is TaskState.PENDING and t.attempts[0].state is TaskState.LOST and t.executor == ""
        assert e.scheduler.retries_used(tid) == 1
        w = e.fanout.subscribe()
        s2 = reports.connected(e, _hello(running=(RunningAttempt(tid, 1, 999.0),)))
        await _settle()
        cmds = _drain(s2)
        assert isinstance(cmds[0], WelcomeCmd) and cmds[0].output_offsets == ((tid, 1, 7),)
        assert not [c for c in cmds if isinstance(c, (AssignCmd, CancelCmd))]
        t = queries.task(e, tid)
        assert t.state is TaskState.RUNNING and [(a.number, a.state, a.executor, a.gpu_ids) for a in t.attempts] == [
            (1, TaskState.RUNNING, "r1", (0,))
        ]
        assert e.scheduler.retries_used(tid) == 0 and e.store.active_tasks().__next__().retries_used == 0
        events = [x.body for x in w.queue if isinstance(x.body, ev.TaskEvent) and x.body.task.id == tid]
        assert [x.kind for x in events] == [ev.TaskEventKind.UPDATED]  # one coherent change
        assert events[0].task.state is TaskState.RUNNING and events[0].task.stale_since is None
        (tid2,) = commands.submit(e, [TaskSpec(name="b", shell="true")])
        await _settle()
        assert not [c for c in _drain(s2) if isinstance(c, AssignCmd)]  # its one slot is taken
        reports.finished(e, "r1", AttemptResult(tid, 1, TaskState.SUCCEEDED, exit_code=0, result={"v": 1}))
        assert queries.task(e, tid).state is TaskState.SUCCEEDED and queries.task(e, tid).result == {"v": 1}
        e.store.close()

    asyncio.run(go())


def test_a_superseded_attempt_is_stopped_and_holds_its_slot_until_it_reports(tmp_path: Path) -> None:
    async def go() -> None:
        clock = Clock()
        e = _core(tmp_path, clock)
        s = reports.connected(e, _hello())
        (tid,) = commands.submit(e, [TaskSpec(name="a", shell="true", max_retries=1)])
        await _settle()
        _lose(e, clock, s)
        s2 = reports.connected(e, _hello("r2", instance="q1"))
        await _settle()
        assert [c for c in _drain(s2) if isinstance(c, AssignCmd)] == [AssignCmd(tid, 2, e.store.spec(tid), ())]
        (other,) = commands.submit(e, [TaskSpec(name="other", shell="true")])
        s3 = reports.connected(e, _hello(running=(RunningAttempt(tid, 1, 999.0),)))
        await _settle()
        cmds = _drain(s3)
        assert CancelCmd(tid, 1, "this attempt is not current on the controller") in cmds
        assert not [c for c in cmds if isinstance(c, AssignCmd)]  # the slot is still taken by attempt 1
        reports.finished(e, "r1", AttemptResult(tid, 1, TaskState.CANCELLED, error="stopped"))
        await _settle()
        assert [c.task_id for c in _drain(s3) if isinstance(c, AssignCmd)] == [other]
        t = queries.task(e, tid)
        assert t.state is TaskState.RUNNING and t.attempts[0].state is TaskState.CANCELLED and len(t.attempts) == 2
        e.store.close()

    asyncio.run(go())


def test_the_result_of_a_lost_attempt_reported_on_return_is_applied_and_waits_for_its_output(tmp_path: Path) -> None:
    async def go() -> None:
        clock = Clock()
        e = _core(tmp_path, clock)
        s = reports.connected(e, _hello())
        (tid,) = commands.submit(e, [TaskSpec(name="a", shell="true", max_retries=2)])
        await _settle()
        reports.output(e, tid, 1, 0, b"abc")
        _lose(e, clock, s)
        res = AttemptResult(tid, 1, TaskState.SUCCEEDED, exit_code=0, result={"v": 1}, output_bytes=6)
        s2 = reports.connected(e, _hello(unreported=(res,)))
        await _settle()
        welcome = _drain(s2)[0]
        assert isinstance(welcome, WelcomeCmd) and welcome.output_offsets == ((tid, 1, 3),)
        t = queries.task(e, tid)
        assert t.state is TaskState.SUCCEEDED and t.result == {"v": 1} and len(t.attempts) == 1
        assert e.scheduler.retries_used(tid) == 0
        assert e.tails.get(tid, 1) is not None  # held until the rest of the output is in
        reports.output(e, tid, 1, 3, b"def")
        assert e.tails.get(tid, 1) is None
        lifecycle.flush(e)
        assert e.store.output(tid, 1) == (0, b"abcdef")
        e.store.close()

    asyncio.run(go())


def test_per_task_lost_after_and_poison_after(tmp_path: Path) -> None:
    async def go() -> None:
        clock = Clock()
        e = _core(tmp_path, clock, poison_after=2)
        s = reports.connected(e, _hello(slots=3))
        short, long, poison = commands.submit(
            e,
            [
                TaskSpec(name="s", shell="true", lost_after_s=2, max_retries=5),
                TaskSpec(name="l", shell="true", lost_after_s=100, max_retries=5),
                TaskSpec(name="p", shell="true", max_retries=5),
            ],
        )
        await _settle()
        reports.disconnected(e, s)
        clock.t += 3
        liveness.check(e)
        assert queries.task(e, short).state is TaskState.PENDING and queries.task(e, long).state is TaskState.RUNNING
        assert queries.task(e, long).stale_since == 1000.0
        clock.t += 20  # past the default (10 s): the long one still runs, its executor is not gone
        liveness.check(e)
        assert queries.task(e, long).state is TaskState.RUNNING and queries.task(e, poison).state is TaskState.PENDING
        assert queries.executor(e, "r1").state.value == "dead"
        # A new runner process: the attempts it does not report died with the old one.
        s = reports.connected(e, _hello(slots=3, instance="p2"))
        await _settle()
        assert queries.task(e, long).attempts[0].state is TaskState.LOST
        ids = {c.task_id: c.attempt for c in _drain(s) if isinstance(c, AssignCmd)}
        assert ids == {short: 2, long: 2, poison: 2}
        reports.connected(e, _hello(slots=3, instance="p3"))  # the runner died again under all three
        await _settle()
        for tid in (short, long, poison):
            t = queries.task(e, tid)
            assert t.state is TaskState.FAILED and "its runner died 2 times in a row" in t.error, t
        e.store.close()

    asyncio.run(go())


def test_pure_parts() -> None:
    sched = Scheduler()
    sched.executor_up("r1", Capacity(slots=1), {})
    sched.add("1", TaskSpec(shell="true", max_retries=1))
    [d] = sched.assign()
    assert verdict(sched, "r1", "1", 1) is Verdict.KEEP and verdict(sched, "r2", "1", 1) is Verdict.STOP
    sched.attempt_lost("1", 1, "gone")
    assert verdict(sched, "r1", "1", 1) is Verdict.TAKE_BACK and verdict(sched, "r2", "1", 1) is Verdict.STOP
    sched.executor_up("r2", Capacity(slots=1), {})
    sched.assign()
    assert verdict(sched, "r1", "1", 1) is Verdict.STOP  # attempt 2 runs on r2
    deaths = Deaths(3)
    assert not deaths.maybe_died("1", 1) and not deaths.died("1", 2)
    deaths.returned("1", 1)  # the same process came back with attempt 1: not a death
    assert not deaths.died("1", 3) and deaths.died("1", 4)
    deaths.ended("1")
    assert not deaths.died("1", 5)
    tails = OutputTails(1024)
    tails.open("1", 1).append(0, b"ab")
    assert tails.await_rest("1", 1, 4, "r1") and tails.finish("1", 1) is None
    tails.give_up("r1")
    assert tails.get("1", 1) is None and tails.take_dirty() == [("1", 1, 0, b"ab")]
