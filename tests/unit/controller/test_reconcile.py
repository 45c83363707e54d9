"""Reconciling a returning runner with a fake clock and a real SQLite file: take back, stop, hold, poison."""

from __future__ import annotations

import asyncio
from pathlib import Path

from dtask_common import events as ev
from dtask_common.models import AttemptResult, Capacity, Resources, RunningAttempt, TaskSpec, TaskState
from dtask_controller.domain import AssignCmd, CancelCmd, Hello, Session, Settings, WelcomeCmd
from dtask_controller.engine import Engine
from dtask_controller.output import OutputTails
from dtask_controller.poison import Deaths
from dtask_controller.reconcile import Verdict, verdict
from dtask_controller.scheduler import Scheduler
from dtask_controller.store import SqliteStore


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _engine(tmp_path: Path, clock: Clock, **kw: object) -> Engine:
    e = Engine(SqliteStore(tmp_path / "c.db"), Settings(dead_after_s=3, lost_after_s=10, **kw), clock)  # type: ignore[arg-type]
    e.restore()
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
    return Hello(name, capacity=Capacity(slots=slots, gpus=(0,)), protocol_version=1, instance_id=instance,
                 **kw)  # type: ignore[arg-type]


def _lose(e: Engine, clock: Clock, s: Session, seconds: float = 11) -> None:
    e.runner_disconnected(s)
    clock.t += seconds
    e.check_liveness()


def test_a_runner_back_with_a_lost_attempt_gets_it_back_with_its_retry_and_one_task_event(tmp_path: Path) -> None:
    async def go() -> None:
        clock = Clock()
        e = _engine(tmp_path, clock)
        s = e.runner_connected(_hello())
        (tid,) = e.submit([TaskSpec(name="a", shell="true", max_retries=1, resources=Resources(gpus=1))])
        await _settle()
        e.output(tid, 1, 0, b"line 1\n")
        _lose(e, clock, s)
        t = e.task(tid)
        assert t.state is TaskState.PENDING and t.attempts[0].state is TaskState.LOST and t.executor == ""
        assert e.scheduler.retries_used(tid) == 1
        w = e.hub.subscribe()
        s2 = e.runner_connected(_hello(running=(RunningAttempt(tid, 1, 999.0),)))
        await _settle()
        cmds = _drain(s2)
        assert isinstance(cmds[0], WelcomeCmd) and cmds[0].output_offsets == ((tid, 1, 7),)
        assert not [c for c in cmds if isinstance(c, (AssignCmd, CancelCmd))]
        t = e.task(tid)
        assert t.state is TaskState.RUNNING and [(a.number, a.state, a.executor, a.gpu_ids) for a in t.attempts] == [
            (1, TaskState.RUNNING, "r1", (0,))]
        assert e.scheduler.retries_used(tid) == 0 and e.store.active_tasks().__next__().retries_used == 0
        events = [x.body for x in w.queue if isinstance(x.body, ev.TaskEvent) and x.body.task.id == tid]
        assert [x.kind for x in events] == [ev.TaskEventKind.UPDATED]  # one coherent change
        assert events[0].task.state is TaskState.RUNNING and events[0].task.stale_since is None
        (tid2,) = e.submit([TaskSpec(name="b", shell="true")])
        await _settle()
        assert not [c for c in _drain(s2) if isinstance(c, AssignCmd)]  # its one slot is taken
        e.attempt_finished("r1", AttemptResult(tid, 1, TaskState.SUCCEEDED, exit_code=0, result={"v": 1}))
        assert e.task(tid).state is TaskState.SUCCEEDED and e.task(tid).result == {"v": 1}
        e.store.close()

    asyncio.run(go())


def test_a_superseded_attempt_is_stopped_and_holds_its_slot_until_it_reports(tmp_path: Path) -> None:
    async def go() -> None:
        clock = Clock()
        e = _engine(tmp_path, clock)
        s = e.runner_connected(_hello())
        (tid,) = e.submit([TaskSpec(name="a", shell="true", max_retries=1)])
        await _settle()
        _lose(e, clock, s)
        s2 = e.runner_connected(_hello("r2", instance="q1"))
        await _settle()
        assert [c for c in _drain(s2) if isinstance(c, AssignCmd)] == [AssignCmd(tid, 2, e.store.spec(tid), ())]
        (other,) = e.submit([TaskSpec(name="other", shell="true")])
        s3 = e.runner_connected(_hello(running=(RunningAttempt(tid, 1, 999.0),)))
        await _settle()
        cmds = _drain(s3)
        assert CancelCmd(tid, 1, "this attempt is not current on the controller") in cmds
        assert not [c for c in cmds if isinstance(c, AssignCmd)]  # the slot is still taken by attempt 1
        e.attempt_finished("r1", AttemptResult(tid, 1, TaskState.CANCELLED, error="stopped"))
        await _settle()
        assert [c.task_id for c in _drain(s3) if isinstance(c, AssignCmd)] == [other]
        t = e.task(tid)
        assert t.state is TaskState.RUNNING and t.attempts[0].state is TaskState.CANCELLED and len(t.attempts) == 2
        e.store.close()

    asyncio.run(go())


def test_the_result_of_a_lost_attempt_reported_on_return_is_applied_and_waits_for_its_output(tmp_path: Path) -> None:
    async def go() -> None:
        clock = Clock()
        e = _engine(tmp_path, clock)
        s = e.runner_connected(_hello())
        (tid,) = e.submit([TaskSpec(name="a", shell="true", max_retries=2)])
        await _settle()
        e.output(tid, 1, 0, b"abc")
        _lose(e, clock, s)
        res = AttemptResult(tid, 1, TaskState.SUCCEEDED, exit_code=0, result={"v": 1}, output_bytes=6)
        s2 = e.runner_connected(_hello(unreported=(res,)))
        await _settle()
        welcome = _drain(s2)[0]
        assert isinstance(welcome, WelcomeCmd) and welcome.output_offsets == ((tid, 1, 3),)
        t = e.task(tid)
        assert t.state is TaskState.SUCCEEDED and t.result == {"v": 1} and len(t.attempts) == 1
        assert e.scheduler.retries_used(tid) == 0
        assert e.tails.get(tid, 1) is not None  # held until the rest of the output is in
        e.output(tid, 1, 3, b"def")
        assert e.tails.get(tid, 1) is None
        e.flush()
        assert e.store.output(tid, 1) == (0, b"abcdef")
        e.store.close()

    asyncio.run(go())


def test_per_task_lost_after_and_poison_after(tmp_path: Path) -> None:
    async def go() -> None:
        clock = Clock()
        e = _engine(tmp_path, clock, poison_after=2)
        s = e.runner_connected(_hello(slots=3))
        short, long, poison = e.submit([TaskSpec(name="s", shell="true", lost_after_s=2, max_retries=5),
                                        TaskSpec(name="l", shell="true", lost_after_s=100, max_retries=5),
                                        TaskSpec(name="p", shell="true", max_retries=5)])
        await _settle()
        e.runner_disconnected(s)
        clock.t += 3
        e.check_liveness()
        assert e.task(short).state is TaskState.PENDING and e.task(long).state is TaskState.RUNNING
        assert e.task(long).stale_since == 1000.0
        clock.t += 20  # past the default (10 s): the long one still runs, its executor is not gone
        e.check_liveness()
        assert e.task(long).state is TaskState.RUNNING and e.task(poison).state is TaskState.PENDING
        assert e.executor("r1").state.value == "dead"
        # A new runner process: the attempts it does not report died with the old one.
        s = e.runner_connected(_hello(slots=3, instance="p2"))
        await _settle()
        assert e.task(long).attempts[0].state is TaskState.LOST
        ids = {c.task_id: c.attempt for c in _drain(s) if isinstance(c, AssignCmd)}
        assert ids == {short: 2, long: 2, poison: 2}
        e.runner_connected(_hello(slots=3, instance="p3"))  # the runner died again under all three
        await _settle()
        for tid in (short, long, poison):
            t = e.task(tid)
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
