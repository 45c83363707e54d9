"""Runner sessions against a real controller: dispatch, results and acks, loss, reconnects, fencing."""

from __future__ import annotations

from pathlib import Path

from dtask.v1 import common_pb2 as cpb
from dtask.v1 import controller_pb2 as pb

from tests.integration.controller.helpers import run, shell, state, stub, submit, until
from tests.integration.controller.scripted_runner import ScriptedRunner, finished_msg
from tests.support import Proc


def test_dispatch_result_ack_and_queries(ctl: Proc, home: Path) -> None:
    async def go() -> None:
        ch, s = stub(ctl.address, home)
        r1 = ScriptedRunner(ctl.address, home / "certs", "r1", slots=2, labels={"zone": "a"})
        welcome = await r1.connect()
        assert welcome.executor_name == "r1" and welcome.controller_name.startswith("ctrl@")
        ids = await submit(s, shell("a"), shell("b", priority=5), shell("c", tags=["sweep"]))
        assert ids == ["1", "2", "3"]
        first, second = await r1.assign(), await r1.assign()
        assert [(first.task_id, first.attempt), (second.task_id, second.attempt)] == [("2", 1), ("1", 1)]
        assert first.spec.name == "b" and first.spec.shell == "true"
        running = await s.ListTasks(pb.ListTasksRequest(states=[cpb.TASK_STATE_RUNNING]), timeout=10)
        assert sorted(t.id for t in running.tasks) == ["1", "2"] and running.total == 2
        fin = await s.IsFinished(pb.IsFinishedRequest(), timeout=10)
        assert not fin.finished and (fin.queue.pending, fin.queue.running) == (1, 2)
        r1.finish("2", 1, result={"acc": 0.91})
        ack = (await r1.recv("ack")).ack
        assert (ack.task_id, ack.attempt) == ("2", 1)
        t = await s.GetTask(pb.GetTaskRequest(task_id="2"), timeout=10)
        assert t.state == cpb.TASK_STATE_SUCCEEDED and t.result["acc"] == 0.91
        assert t.attempts[0].executor == "r1" and t.attempts[0].exit_code == 0
        third = await r1.assign()
        assert third.task_id == "3"
        r1.finish("1", 1, state=cpb.TASK_STATE_FAILED, exit_code=3, error="RuntimeError: bad")
        r1.finish("3", 1)
        await r1.recv("ack")
        await r1.recv("ack")
        fin = await s.IsFinished(pb.IsFinishedRequest(), timeout=10)
        assert fin.finished and (fin.queue.succeeded, fin.queue.failed) == (2, 1)
        failed = await s.GetTask(pb.GetTaskRequest(task_id="1"), timeout=10)
        assert failed.state == cpb.TASK_STATE_FAILED and failed.error == "RuntimeError: bad"
        tagged = await s.ListTasks(pb.ListTasksRequest(tag="sweep"), timeout=10)
        assert [t.id for t in tagged.tasks] == ["3"]
        by_exec = await s.ListTasks(pb.ListTasksRequest(executor="r1", page_size=2), timeout=10)
        assert [t.id for t in by_exec.tasks] == ["1", "2"] and by_exec.next_page_token and by_exec.total == 3
        nxt = await s.ListTasks(pb.ListTasksRequest(executor="r1", page_size=2, page_token=by_exec.next_page_token))
        assert [t.id for t in nxt.tasks] == ["3"] and not nxt.next_page_token
        r1.usage(cpu=42.0)
        await until(lambda: _usage_seen(s), what="a usage sample")
        execs = await s.ListExecutors(pb.ListExecutorsRequest(), timeout=10)
        (e,) = execs.executors
        assert e.name == "r1" and e.state == cpb.EXECUTOR_STATE_IDLE and e.labels["zone"] == "a"
        assert e.capacity.slots == 2 and e.version
        await r1.close()
        await ch.close()

    async def _usage_seen(s) -> bool:  # type: ignore[no-untyped-def]
        u = await s.GetResourceUsage(pb.GetResourceUsageRequest(), timeout=10)
        return bool(
            u.executors
            and u.executors[0].latest.cpu_percent == 42.0
            and not u.executors[0].dead
            and len(u.executors[0].history) == 1
        )

    run(go())
    ctl.wait_for(r"task 2 \(b\) dispatched to r1, attempt 1")
    ctl.wait_for(r"task 2 succeeded")


def test_runner_disappears_dead_gone_requeue(ctl: Proc, home: Path) -> None:
    async def go() -> None:
        ch, s = stub(ctl.address, home)
        r1 = ScriptedRunner(ctl.address, home / "certs", "r1")
        await r1.connect()
        (tid,) = await submit(s, shell("long", max_retries=1))
        a = await r1.assign()
        assert (a.task_id, a.attempt) == (tid, 1)
        await r1.drop()
        r2 = ScriptedRunner(ctl.address, home / "certs", "r2")
        await r2.connect()
        r2.heartbeat()
        a2 = await r2.assign(timeout=15)  # after r1 is gone (1.5 s), attempt 2 goes to r2
        assert (a2.task_id, a2.attempt) == (tid, 2)
        t = await s.GetTask(pb.GetTaskRequest(task_id=tid), timeout=10)
        assert [x.state for x in t.attempts] == [cpb.TASK_STATE_LOST, cpb.TASK_STATE_RUNNING]
        assert "gone" in t.attempts[0].error
        u = await s.GetResourceUsage(pb.GetResourceUsageRequest(executor="r2"), timeout=10)
        assert not u.executors[0].dead
        gone = await s.ListExecutors(pb.ListExecutorsRequest(include_gone=True), timeout=10)
        assert {e.name: e.state for e in gone.executors}["r1"] == cpb.EXECUTOR_STATE_GONE
        shown = await s.ListExecutors(pb.ListExecutorsRequest(), timeout=10)
        assert [e.name for e in shown.executors] == ["r2"]
        await r2.close()
        await ch.close()

    run(go())
    ctl.wait_for("executor r1 dead")
    ctl.wait_for("executor r1 gone")


def test_reconnect_reconciles_running_and_fences_superseded_results(ctl: Proc, home: Path) -> None:
    async def go() -> None:
        ch, s = stub(ctl.address, home)
        r1 = ScriptedRunner(ctl.address, home / "certs", "r1", slots=2)
        await r1.connect()
        a, b = await submit(s, shell("a"), shell("b", max_retries=1))
        assert {(await r1.assign()).task_id, (await r1.assign()).task_id} == {a, b}
        # The runner reconnects (a second session replaces the first): it still runs a, not b.
        again = ScriptedRunner(ctl.address, home / "certs", "r1", slots=2, running=[(a, 1)])
        await again.connect()
        with_eof = None
        try:
            await r1.recv(timeout=5)
        except EOFError as exc:
            with_eof = exc
        assert with_eof is not None, "the replaced session must end"
        redo = await again.assign()
        assert (redo.task_id, redo.attempt) == (b, 2)  # b was LOST and requeued
        # The superseded attempt 1 of b reports success: recorded and acked, never current.
        again.finish(b, 1, result={"old": True})
        ack = (await again.recv("ack")).ack
        assert (ack.task_id, ack.attempt) == (b, 1)
        tb = await s.GetTask(pb.GetTaskRequest(task_id=b), timeout=10)
        assert tb.state == cpb.TASK_STATE_RUNNING and len(tb.attempts) == 2
        assert tb.attempts[0].state == cpb.TASK_STATE_SUCCEEDED and tb.attempts[0].result["old"] is True
        assert not tb.HasField("result")
        again.finish(a, 1)
        again.finish(b, 2, result={"new": True})
        await again.recv("ack")
        await again.recv("ack")
        tb = await s.GetTask(pb.GetTaskRequest(task_id=b), timeout=10)
        assert tb.state == cpb.TASK_STATE_SUCCEEDED and dict(tb.result) == {"new": True}
        assert await state(s, a) == cpb.TASK_STATE_SUCCEEDED
        await again.close()
        await ch.close()

    run(go())
    ctl.wait_for("replaced its previous session")


def test_hello_with_unreported_result_and_unknown_attempt(ctl: Proc, home: Path) -> None:
    async def go() -> None:
        ch, s = stub(ctl.address, home)
        r1 = ScriptedRunner(ctl.address, home / "certs", "r1")
        await r1.connect()
        (tid,) = await submit(s, shell("a"))
        await r1.assign()
        await r1.drop()
        # Back with the result it could not deliver, and an attempt the controller never gave.
        back = ScriptedRunner(
            ctl.address,
            home / "certs",
            "r1",
            running=[("999", 1)],
            unreported=[finished_msg(tid, 1, result={"x": 1}), finished_msg("12345", 1)],
        )
        await back.connect()
        msgs = [await back.recv() for _ in range(3)]
        acks = sorted(m.ack.task_id for m in msgs if m.WhichOneof("msg") == "ack")
        assert acks == sorted([tid, "12345"])  # an unknown task's result is acked so the runner forgets it
        assert [m.cancel.task_id for m in msgs if m.WhichOneof("msg") == "cancel"] == ["999"]
        t = await s.GetTask(pb.GetTaskRequest(task_id=tid), timeout=10)
        assert t.state == cpb.TASK_STATE_SUCCEEDED and t.result["x"] == 1
        await back.close()
        await ch.close()

    run(go())


def test_cancel_running_waits_for_runner(ctl: Proc, home: Path) -> None:
    async def go() -> None:
        ch, s = stub(ctl.address, home)
        r1 = ScriptedRunner(ctl.address, home / "certs", "r1")
        await r1.connect()
        a, b = await submit(s, shell("a", max_retries=3), shell("b"))
        await r1.assign()
        pend = await s.CancelTask(pb.CancelTaskRequest(task_id=b), timeout=10)
        assert pend.state == cpb.TASK_STATE_CANCELLED
        t = await s.CancelTask(pb.CancelTaskRequest(task_id=a), timeout=10)
        assert t.state == cpb.TASK_STATE_RUNNING
        c = (await r1.recv("cancel")).cancel
        assert (c.task_id, c.attempt) == (a, 1)
        r1.finish(a, 1, state=cpb.TASK_STATE_FAILED, exit_code=-15, error="terminated")
        await r1.recv("ack")
        assert await state(s, a) == cpb.TASK_STATE_CANCELLED
        retried = await s.RetryTask(pb.RetryTaskRequest(task_id=a), timeout=10)
        assert retried.state in (cpb.TASK_STATE_PENDING, cpb.TASK_STATE_RUNNING)
        a2 = await r1.assign()
        assert (a2.task_id, a2.attempt) == (a, 2)
        await r1.close()
        await ch.close()

    run(go())


def test_pause_resume_drain(ctl: Proc, home: Path) -> None:
    async def go() -> None:
        ch, s = stub(ctl.address, home)
        q = await s.PauseQueue(pb.PauseQueueRequest(), timeout=10)
        assert q.paused
        r1 = ScriptedRunner(ctl.address, home / "certs", "r1")
        await r1.connect()
        (tid,) = await submit(s, shell("a"))
        info = await s.DrainExecutor(pb.DrainExecutorRequest(name="r1"), timeout=10)
        assert info.state == cpb.EXECUTOR_STATE_DRAINING
        q = await s.ResumeQueue(pb.ResumeQueueRequest(), timeout=10)
        assert not q.paused and q.pending == 1
        assert await state(s, tid) == cpb.TASK_STATE_PENDING  # r1 drains
        await s.DrainExecutor(pb.DrainExecutorRequest(name="r1", undrain=True), timeout=10)
        assert (await r1.assign()).task_id == tid
        await r1.close()
        await ch.close()

    run(go())
