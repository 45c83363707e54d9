"""The controller core with a real SQLite file and a fake clock, no network: liveness, requeue, Watch resync."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest
from dtask_common import events as ev
from dtask_common.config import Config
from dtask_common.models import AttemptResult, Capacity, TaskSpec, TaskState, UsageSample
from dtask_controller import commands, liveness, queries, recovery, reports, streams
from dtask_controller.core import ControllerCore
from dtask_controller.errors import SlowWatcher
from dtask_controller.runner_messages import AckCmd, AssignCmd, Hello, Session, WelcomeCmd
from dtask_controller.settings import Settings
from dtask_controller.store import SqliteStore


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def core(tmp_path: Path, clock: Clock, **kw: object) -> ControllerCore:
    settings = replace(Settings.from_config(Config()), dead_after_s=3, lost_after_s=60, **kw)  # type: ignore[arg-type]
    e = ControllerCore(SqliteStore(tmp_path / "c.db"), settings, clock)
    recovery.restore(e)
    return e


def drain(s: Session) -> list[object]:
    out = []
    while not s.outbox.empty():
        out.append(s.outbox.get_nowait())
    return out


async def settle() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


def test_dead_then_gone_requeues_with_fake_clock(tmp_path: Path) -> None:
    async def go() -> None:
        clock = Clock()
        e = core(tmp_path, clock)
        s = reports.connected(e, Hello("r1", capacity=Capacity(slots=1), protocol_version=1))
        (tid,) = commands.submit(e, [TaskSpec(name="a", shell="true", max_retries=1)])
        await settle()
        cmds = drain(s)
        assert isinstance(cmds[0], WelcomeCmd) and cmds[1] == AssignCmd(tid, 1, e.store.spec(tid), ())
        clock.t += 3.5
        liveness.check(e)
        assert queries.executor(e, "r1").state.value == "dead" and queries.task(e, tid).state is TaskState.RUNNING
        reports.disconnected(e, s)
        clock.t += 60
        liveness.check(e)
        t = queries.task(e, tid)
        assert t.state is TaskState.PENDING and t.attempts[0].state is TaskState.LOST
        assert queries.executor(e, "r1").state.value == "gone"
        s2 = reports.connected(e, Hello("r2", capacity=Capacity(), protocol_version=1))
        await settle()
        assert [c for c in drain(s2) if isinstance(c, AssignCmd)] == [AssignCmd(tid, 2, e.store.spec(tid), ())]
        reports.finished(e, "r2", AttemptResult(tid, 2, TaskState.SUCCEEDED, exit_code=0, result={"ok": 1}))
        assert drain(s2) == [AckCmd(tid, 2)]
        assert queries.queue(e).finished and queries.queue(e).succeeded == 1
        e.store.close()

    asyncio.run(go())


def test_a_dead_executor_gets_no_new_work_until_it_is_heard_again(tmp_path: Path) -> None:
    async def go() -> None:
        clock = Clock()
        e = core(tmp_path, clock)
        s = reports.connected(e, Hello("r1", capacity=Capacity(slots=2), protocol_version=1))
        await settle()
        drain(s)
        clock.t += 3.5
        liveness.check(e)
        assert queries.executor(e, "r1").state.value == "dead"
        (tid,) = commands.submit(e, [TaskSpec(name="a", shell="true")])
        await settle()
        assert [c for c in drain(s) if isinstance(c, AssignCmd)] == []  # its session never ended, but it is silent
        assert queries.task(e, tid).state is TaskState.PENDING
        assert reports.seen(e, s)
        await settle()
        assert [c for c in drain(s) if isinstance(c, AssignCmd)] == [AssignCmd(tid, 1, e.store.spec(tid), ())]
        e.store.close()

    asyncio.run(go())


def test_restart_rebuilds_queue_running_and_counts(tmp_path: Path) -> None:
    async def go() -> None:
        clock = Clock()
        e = core(tmp_path, clock)
        reports.connected(e, Hello("r1", capacity=Capacity(slots=1), protocol_version=1))
        ids = commands.submit(e, [TaskSpec(name=f"t{i}", shell="true") for i in range(3)])
        await settle()
        reports.finished(e, "r1", AttemptResult(ids[0], 1, TaskState.FAILED, exit_code=1, error="x"))
        await settle()
        e.store.close()  # no clean shutdown
        e2 = core(tmp_path, clock)
        q = queries.queue(e2)
        assert (q.failed, q.running, q.pending) == (1, 1, 1)
        assert e2.scheduler.running_on("r1") == [(ids[1], 1)]
        clock.t += 61
        liveness.check(e2)  # r1 never came back: its attempt is lost, no retries left
        assert queries.task(e2, ids[1]).state is TaskState.LOST
        e2.store.close()

    asyncio.run(go())


def test_watch_snapshot_and_resync_after_overflow(tmp_path: Path) -> None:
    async def go() -> None:
        e = core(tmp_path, Clock(), watch_queue=5)
        commands.submit(e, [TaskSpec(name="a", shell="true")])
        stream = streams.watch(e)
        first = await anext(stream)
        assert isinstance(first.body, ev.Snapshot) and first.body.last and [t.id for t in first.body.tasks] == ["1"]
        assert not first.resync
        commands.submit(e, [TaskSpec(name="b", shell="true")])
        nxt = await anext(stream)
        assert isinstance(nxt.body, ev.TaskEvent) and nxt.body.kind is ev.TaskEventKind.ADDED and nxt.seq > first.seq
        commands.submit(e, [TaskSpec(name=f"c{i}", shell="true") for i in range(10)])  # more than the watcher may hold
        again = await anext(stream)
        assert again.resync and isinstance(again.body, ev.Snapshot) and len(again.body.tasks) == 12
        commands.set_paused(e, True)
        q = await anext(stream)
        assert isinstance(q.body, ev.QueueEvent) and q.body.queue.paused
        await stream.aclose()
        assert not e.fanout.active
        e.store.close()

    asyncio.run(go())


def test_follow_waits_for_dispatch_then_streams_until_the_end(tmp_path: Path) -> None:
    async def go() -> None:
        e = core(tmp_path, Clock())
        (tid,) = commands.submit(e, [TaskSpec(name="a", shell="true")])
        got: list[bytes] = []

        async def follow() -> None:
            async for chunk in streams.output(e, tid, 0, follow=True):
                got.append(chunk.data)

        reader = asyncio.create_task(follow())
        await settle()
        assert not reader.done() and not got  # pending: the follower waits
        reports.connected(e, Hello("r1", capacity=Capacity(), protocol_version=1))
        await settle()
        reports.output(e, tid, 1, 0, b"line 1\n")
        await settle()
        assert got == [b"line 1\n"]
        reports.output(e, tid, 1, 7, b"line 2\n")
        reports.finished(e, "r1", AttemptResult(tid, 1, TaskState.SUCCEEDED, exit_code=0))
        await asyncio.wait_for(reader, 2)
        assert b"".join(got) == b"line 1\nline 2\n"
        assert e.store.output(tid, 1) == (0, b"line 1\nline 2\n")
        e.store.close()

    asyncio.run(go())


def test_operator_drain_survives_restart(tmp_path: Path) -> None:
    async def go() -> None:
        clock = Clock()
        e = core(tmp_path, clock)
        reports.connected(e, Hello("r1", capacity=Capacity(), protocol_version=1))
        commands.drain(e, "r1")
        e.store.close()
        e2 = core(tmp_path, clock)
        s = reports.connected(e2, Hello("r1", capacity=Capacity(), protocol_version=1))
        commands.submit(e2, [TaskSpec(name="a", shell="true")])
        await settle()
        assert not [c for c in drain(s) if isinstance(c, AssignCmd)]
        assert queries.executor(e2, "r1").state.value == "draining"
        commands.drain(e2, "r1", undrain=True)
        await settle()
        assert [c.task_id for c in drain(s) if isinstance(c, AssignCmd)] == ["1"]
        e2.store.close()

    asyncio.run(go())


def test_restart_keeps_dependencies_on_later_tasks_of_a_submission(tmp_path: Path) -> None:
    async def go() -> None:
        clock = Clock()
        e = core(tmp_path, clock)
        ids = commands.submit(
            e, [TaskSpec(name="train", shell="true", depends_on=("prep",)), TaskSpec(name="prep", shell="true")]
        )
        e.store.close()
        e2 = core(tmp_path, clock)
        assert queries.task(e2, ids[0]).state is TaskState.PENDING  # waits for prep (a later id), not failed
        s = reports.connected(e2, Hello("r1", capacity=Capacity(), protocol_version=1))
        await settle()
        assert [c.task_id for c in drain(s) if isinstance(c, AssignCmd)] == [ids[1]]
        reports.finished(e2, "r1", AttemptResult(ids[1], 1, TaskState.SUCCEEDED, exit_code=0))
        await settle()
        assert [c.task_id for c in drain(s) if isinstance(c, AssignCmd)] == [ids[0]]
        e2.store.close()

    asyncio.run(go())


def test_watcher_that_stops_reading_its_snapshot_is_dropped(tmp_path: Path) -> None:
    async def go() -> None:
        e = core(tmp_path, Clock())
        commands.submit(e, [TaskSpec(name=f"t{i}", shell="true") for i in range(1200)])
        stream = streams.watch(e, deadline_s=0.05)
        first = await anext(stream)
        assert isinstance(first.body, ev.Snapshot) and not first.body.last
        await asyncio.sleep(0.2)  # the watcher does not read on: its read transaction is closed
        with pytest.raises(SlowWatcher, match="was not read within"):
            await anext(stream)
        assert not e.fanout.active
        e.store.close()

    asyncio.run(go())


def test_snapshot_pieces_stay_small(tmp_path: Path) -> None:
    async def go() -> None:
        e = core(tmp_path, Clock())
        stream = streams.watch(e)
        empty = await anext(stream)  # no task, no executor: one piece with the queue
        assert isinstance(empty.body, ev.Snapshot) and empty.body.last and empty.body.queue is not None
        await stream.aclose()
        reports.connected(e, Hello("r1", capacity=Capacity(), protocol_version=1))
        for i in range(60):
            reports.usage(e, "r1", UsageSample(at=float(i), per_cpu_percent=(1.0,) * 64))
        commands.submit(e, [TaskSpec(name=f"t{i}", shell="x" * 20_000) for i in range(120)])  # 2.4 MB of commands
        pieces = []
        async for item in streams.watch(e):
            pieces.append(item.body)
            if item.body.last:  # type: ignore[union-attr]
                break
        assert len(pieces) >= 3 and all(isinstance(p, ev.Snapshot) for p in pieces)
        assert pieces[0].executors and pieces[0].usage and pieces[0].queue  # type: ignore[union-attr]
        assert sum(len(p.tasks) for p in pieces) == 120  # type: ignore[union-attr]
        assert all(sum(len(t.spec.shell) for t in p.tasks) <= 1024 * 1024 for p in pieces)  # type: ignore[union-attr]
        e.store.close()

    asyncio.run(go())
