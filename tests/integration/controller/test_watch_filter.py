"""Watch filters against a real controller: task ids, states, tag, executor, finished_limit, batches, bad input."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import grpc
import pytest
from dtask.v1 import common_pb2 as cpb
from dtask.v1 import controller_pb2 as pb
from dtask_common.models import TaskSpec, TaskState
from dtask_controller.store import SqliteStore

from tests.integration.controller.conftest import start_fast_controller
from tests.integration.controller.helpers import run, shell, stub, submit
from tests.integration.controller.scripted_runner import ScriptedRunner
from tests.support import Proc

PENDING, RUNNING, CANCELLED = cpb.TASK_STATE_PENDING, cpb.TASK_STATE_RUNNING, cpb.TASK_STATE_CANCELLED


async def snapshot(watch: Any) -> tuple[list[pb.WatchEvent], list[cpb.Task]]:
    """Read the snapshot pieces of a Watch: (the pieces, their tasks in order)."""
    pieces = []
    while True:
        ev = await asyncio.wait_for(watch.read(), 10)
        assert ev.WhichOneof("event") == "snapshot", ev
        pieces.append(ev)
        if ev.snapshot.last:
            return pieces, [t for p in pieces for t in p.snapshot.tasks]


async def events_until(watch: Any, done: Any, timeout: float = 10) -> list[pb.WatchEvent]:
    """Events (batches unpacked) until done(event) holds for one; that one is the last returned."""
    out: list[pb.WatchEvent] = []
    while True:
        msg = await asyncio.wait_for(watch.read(), timeout)
        for ev in msg.batch.events if msg.WhichOneof("event") == "batch" else [msg]:
            out.append(ev)
            if done(ev):
                return out


def task_of(ev: pb.WatchEvent) -> tuple[str, str]:
    """(kind, task id) of a task or progress event, else (kind, '')."""
    kind = ev.WhichOneof("event")
    if kind == "task":
        return pb.TaskEvent.Kind.Name(ev.task.kind)[5:].lower(), ev.task.task.id
    if kind == "progress":
        return "progress", ev.progress.task_id
    return kind or "", ""


def test_task_ids_give_a_snapshot_of_those_tasks_and_their_events_only(ctl: Proc, home: Path) -> None:
    async def go() -> None:
        ch, s = stub(ctl.address, home)
        ids = await submit(s, *[shell(f"t{i}") for i in range(30)])
        watched = [ids[3], ids[17], "999999"]  # an id the controller does not know is simply absent
        watch = s.Watch(pb.WatchRequest(task_ids=watched, exclude_executors=True))
        pieces, tasks = await snapshot(watch)
        assert [t.id for t in tasks] == [ids[3], ids[17]]
        assert not any(p.snapshot.executors or p.snapshot.usage for p in pieces)
        assert pieces[0].snapshot.queue.pending == 30  # the queue counts stay whole
        for tid in (ids[0], ids[3], ids[5], ids[17]):
            await s.CancelTask(pb.CancelTaskRequest(task_id=tid), timeout=10)
        seen = await events_until(watch, lambda ev: task_of(ev) == ("cancelled", ids[17]))
        assert [task_of(ev) for ev in seen if ev.WhichOneof("event") == "task"] == [
            ("cancelled", ids[3]),
            ("cancelled", ids[17]),
        ]
        watch.cancel()
        await ch.close()

    run(go())


def test_states_executor_and_tag_filters_follow_tasks_in_and_out(ctl: Proc, home: Path) -> None:
    async def go() -> None:
        ch, s = stub(ctl.address, home)
        first, other = await submit(s, shell("a", tags=["red"], priority=5), shell("b", tags=["blue"]))
        pending = s.Watch(pb.WatchRequest(states=[PENDING], exclude_executors=True))
        running = s.Watch(pb.WatchRequest(states=[RUNNING], exclude_executors=True))
        on_r1 = s.Watch(pb.WatchRequest(executor="r1", exclude_executors=True))
        red = s.Watch(pb.WatchRequest(tag="red", exclude_executors=True))
        assert [t.id for t in (await snapshot(pending))[1]] == [first, other]
        assert (await snapshot(running))[1] == [] and (await snapshot(on_r1))[1] == []
        assert [t.id for t in (await snapshot(red))[1]] == [first]
        (late_red,) = await submit(s, shell("c", tags=["red"]))
        r1 = ScriptedRunner(ctl.address, home / "certs", "r1")
        await r1.connect()
        a = await r1.assign()
        assert a.task_id == first
        r1.progress(first, 1, 5, 10)
        progress = lambda ev: task_of(ev) == ("progress", first)  # noqa: E731
        seen = [task_of(e) for e in await events_until(running, progress) if e.WhichOneof("event") != "queue"]
        assert seen == [("dispatched", first), ("progress", first)]
        await s.CancelTask(pb.CancelTaskRequest(task_id=other), timeout=10)
        await s.CancelTask(pb.CancelTaskRequest(task_id=late_red), timeout=10)
        r1.finish(first, 1)
        await r1.recv("ack")
        done = lambda ev: task_of(ev) == ("finished", first)  # noqa: E731 - the last change of all
        # RUNNING: in at its dispatch, its progress while it runs, out when it finished; nothing else
        assert [task_of(e) for e in await events_until(running, done) if e.WhichOneof("event") != "queue"] == [
            ("finished", first)
        ]
        # PENDING: the new task, then each task once more as it leaves the filter (no progress: it is running)
        cancelled = lambda ev: task_of(ev) == ("cancelled", late_red)  # noqa: E731
        assert [task_of(e) for e in await events_until(pending, cancelled) if e.WhichOneof("event") != "queue"] == [
            ("added", late_red),
            ("dispatched", first),
            ("cancelled", other),
            ("cancelled", late_red),
        ]
        seen = [task_of(e) for e in await events_until(on_r1, done) if e.WhichOneof("event") != "queue"]
        assert seen == [("dispatched", first), ("progress", first), ("finished", first)]
        seen = [task_of(e) for e in await events_until(red, done) if e.WhichOneof("event") != "queue"]
        assert seen == [
            ("added", late_red),
            ("dispatched", first),
            ("progress", first),
            ("cancelled", late_red),
            ("finished", first),
        ]
        for w in (pending, running, on_r1, red):
            w.cancel()
        await r1.close()
        await ch.close()

    run(go())


def test_finished_limit_keeps_every_unfinished_task_and_the_newest_finished_ones(ctl: Proc, home: Path) -> None:
    async def go() -> None:
        ch, s = stub(ctl.address, home)
        ids = await submit(s, *[shell(f"t{i}", tags=["even" if i % 2 == 0 else "odd"]) for i in range(10)])
        for tid in ids[:7]:
            await s.CancelTask(pb.CancelTaskRequest(task_id=tid), timeout=10)
        _, tasks = await snapshot(s.Watch(pb.WatchRequest(finished_limit=2)))
        assert [t.id for t in tasks] == [ids[5], ids[6], ids[7], ids[8], ids[9]]
        _, tasks = await snapshot(s.Watch(pb.WatchRequest(finished_limit=2, tag="even")))
        assert [t.id for t in tasks] == [ids[4], ids[6], ids[8]]
        _, tasks = await snapshot(s.Watch(pb.WatchRequest(finished_limit=1, states=[CANCELLED])))
        assert [t.id for t in tasks] == [ids[6]]
        _, tasks = await snapshot(s.Watch(pb.WatchRequest(finished_limit=1, task_ids=ids[:3] + ids[8:])))
        assert [t.id for t in tasks] == [ids[2], ids[8], ids[9]]
        _, tasks = await snapshot(s.Watch(pb.WatchRequest(finished_limit=0)))  # 0: all of them, as before
        assert [t.id for t in tasks] == ids
        await ch.close()

    run(go())


def test_max_batch_sends_events_ready_together_in_one_message_in_order(ctl: Proc, home: Path) -> None:
    async def go() -> None:
        ch, s = stub(ctl.address, home)
        watch = s.Watch(pb.WatchRequest(max_batch=8, exclude_executors=True))
        await snapshot(watch)
        ids = await submit(s, *[shell(f"t{i}") for i in range(20)])  # 20 events published at once
        messages: list[pb.WatchEvent] = []
        events: list[pb.WatchEvent] = []
        while len([e for e in events if e.WhichOneof("event") == "task"]) < 20:
            msg = await asyncio.wait_for(watch.read(), 10)
            messages.append(msg)
            events.extend(msg.batch.events if msg.WhichOneof("event") == "batch" else [msg])
        batches = [m for m in messages if m.WhichOneof("event") == "batch"]
        assert batches and all(1 < len(b.batch.events) <= 8 for b in batches)
        assert all(b.seq == b.batch.events[-1].seq for b in batches)
        assert [task_of(e)[1] for e in events if e.WhichOneof("event") == "task"] == ids
        seqs = [e.seq for e in events]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        watch.cancel()
        await ch.close()

    run(go())


@pytest.mark.parametrize(
    ("request_", "words"),
    [
        (pb.WatchRequest(states=[cpb.TASK_STATE_PENDING, 99]), "unknown task state 99"),
        (pb.WatchRequest(states=[cpb.TASK_STATE_UNSPECIFIED]), "unknown task state 0"),
        (pb.WatchRequest(finished_limit=-1), "finished_limit must be >= 0"),
        (pb.WatchRequest(max_batch=-2), "max_batch must be between 0 and"),
        (pb.WatchRequest(task_ids=[str(i) for i in range(1, 10_002)]), "10001 task_ids in one Watch; at most 10000"),
    ],
)
def test_bad_watch_requests_are_refused_with_a_message(
    ctl: Proc, home: Path, request_: pb.WatchRequest, words: str
) -> None:
    async def go() -> None:
        ch, s = stub(ctl.address, home)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await asyncio.wait_for(s.Watch(request_).read(), 10)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert words in (caught.value.details() or "")
        await ch.close()

    run(go())


def fill_store(path: Path, n: int) -> list[str]:
    """n finished tasks written straight into a controller's store (before it starts): fast, ~1 s for 20,000."""
    st = SqliteStore(path)
    with st.transaction():
        ids = st.add_tasks([TaskSpec(name=f"old{i}", shell="true") for i in range(n)], [[]] * n, now=1.0)
        for tid in ids:
            st.set_task(tid, TaskState.SUCCEEDED)
    st.close()
    return ids


def test_a_watch_of_one_task_on_a_large_store_holds_that_task_alone(home: Path) -> None:
    ids = fill_store(home / "controller.db", 20_000)
    proc = start_fast_controller(home)
    try:

        async def go() -> None:
            ch, s = stub(proc.address, home)
            (new,) = await submit(s, shell("new"))
            watch = s.Watch(pb.WatchRequest(task_ids=[new], exclude_usage=True, exclude_executors=True))
            pieces, tasks = await snapshot(watch)
            assert len(pieces) == 1 and [t.id for t in tasks] == [new]
            assert pieces[0].ByteSize() < 2000  # one task, not 20,000
            watch.cancel()
            _, tasks = await snapshot(s.Watch(pb.WatchRequest(task_ids=[ids[12_345]])))
            assert [(t.id, t.state) for t in tasks] == [(ids[12_345], cpb.TASK_STATE_SUCCEEDED)]
            await ch.close()

        run(go())
    finally:
        proc.stop()
