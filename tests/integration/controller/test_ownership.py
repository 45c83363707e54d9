"""A runner speaks only for its own attempts: another runner certificate's reports and Hello claims change nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
from dtask.v1 import common_pb2 as cpb
from dtask.v1 import controller_pb2 as pb

from tests.integration.controller.helpers import run, shell, stub, submit
from tests.integration.controller.scripted_runner import ScriptedRunner, finished_msg
from tests.support import Proc


async def _output(s, tid: str) -> bytes:  # type: ignore[no-untyped-def]
    return b"".join([c.data async for c in s.GetTaskOutput(pb.GetTaskOutputRequest(task_id=tid, attempt=1))])


async def _ended(r: ScriptedRunner) -> tuple[grpc.StatusCode, str]:
    """Read until the controller ends the stream; its status."""
    while True:
        try:
            await r.recv(timeout=10)
        except (EOFError, grpc.aio.AioRpcError):
            return await r.call.code(), await r.call.details()


def test_foreign_reports_change_nothing_and_end_the_session(ctl: Proc, home: Path) -> None:
    async def go() -> None:
        ch, s = stub(ctl.address, home)
        r1 = ScriptedRunner(ctl.address, home / "certs", "r1")
        await r1.connect()
        r1.heartbeat()
        (tid,) = await submit(s, shell("a"))
        (dep,) = await submit(s, shell("b", depends_on=[tid]))
        a = await r1.assign()
        assert (a.task_id, a.attempt) == (tid, 1)
        r1.output(tid, 1, 0, b"real\n")
        r1.progress(tid, 1, 1, 10)
        # A second runner certificate speaks for r1's attempt: output, progress, then a made-up success.
        r2 = ScriptedRunner(ctl.address, home / "certs", "r2")
        await r2.connect()
        r2.output(tid, 1, 5, b"forged\n")
        r2.progress(tid, 1, 9, 10)
        r2.finish(tid, 1, result={"forged": True})
        ack = (await r2.recv("ack")).ack  # not applied; acked so that a runner forgets it
        assert (ack.task_id, ack.attempt) == (tid, 1)
        t = await s.GetTask(pb.GetTaskRequest(task_id=tid), timeout=10)
        assert t.state == cpb.TASK_STATE_RUNNING and not t.HasField("result")
        assert (t.progress.step, t.progress.total) == (1, 10)
        assert len(t.attempts) == 1 and t.attempts[0].state == cpb.TASK_STATE_RUNNING
        assert await _output(s, tid) == b"real\n"
        assert (await s.GetTask(pb.GetTaskRequest(task_id=dep), timeout=10)).state == cpb.TASK_STATE_PENDING
        ex = await s.GetExecutor(pb.GetExecutorRequest(name="r1"), timeout=10)
        assert list(ex.running_task_ids) == [tid]
        # It keeps doing so: its 21st foreign report ends its session. (It sends no more: a write racing the
        # end of the stream turns the status into INTERNAL on the client, grpc/grpc#36066.)
        for i in range(18):
            r2.output(tid, 1, 12 + i, b"x")
        code, details = await _ended(r2)
        assert code == grpc.StatusCode.PERMISSION_DENIED, details
        assert "not dispatched to it" in details and "r2" in details
        # The real runner's reports land as usual.
        r1.output(tid, 1, 5, b"done\n")
        r1.finish(tid, 1, result={"real": True})
        assert (await r1.recv("ack")).ack.task_id == tid
        t = await s.GetTask(pb.GetTaskRequest(task_id=tid), timeout=10)
        assert t.state == cpb.TASK_STATE_SUCCEEDED and dict(t.result) == {"real": True}
        assert await _output(s, tid) == b"real\ndone\n"
        b = await r1.assign()
        assert b.task_id == dep
        await r1.close()
        await r2.close()
        await ch.close()

    run(go())
    ctl.wait_for(
        r"runner certificate r2 \(executor r2\) reported output for task \d+ attempt 1, which was "
        r"dispatched to r1; not applied"
    )
    ctl.wait_for(r"executor r2: session ended: executor r2 sent 21 reports")
    # Logged once per attempt and session, not once per report.
    assert sum("reported output for task" in line for line in ctl.lines) == 1


def test_foreign_hello_claims_change_nothing(ctl: Proc, home: Path) -> None:
    async def go() -> None:
        ch, s = stub(ctl.address, home)
        r1 = ScriptedRunner(ctl.address, home / "certs", "r1", slots=2)
        await r1.connect()
        r1.heartbeat()
        a, b = await submit(s, shell("a"), shell("b"))
        assert {(await r1.assign()).task_id, (await r1.assign()).task_id} == {a, b}
        # r2 claims to run r1's attempt of a and to hold a result for r1's attempt of b.
        r2 = ScriptedRunner(
            ctl.address,
            home / "certs",
            "r2",
            running=[(a, 1)],
            unreported=[finished_msg(b, 1, result={"forged": True})],
        )
        await r2.connect()
        msgs = [await r2.recv() for _ in range(2)]
        assert sorted(m.WhichOneof("msg") for m in msgs) == ["ack", "cancel"]
        (cancel,) = [m.cancel for m in msgs if m.WhichOneof("msg") == "cancel"]
        assert (cancel.task_id, cancel.attempt) == (a, 1) and "not dispatched to r2" in cancel.reason
        for tid in (a, b):
            t = await s.GetTask(pb.GetTaskRequest(task_id=tid), timeout=10)
            assert t.state == cpb.TASK_STATE_RUNNING and not t.HasField("result"), t
            assert [x.executor for x in t.attempts] == ["r1"]
        ex = await s.GetExecutor(pb.GetExecutorRequest(name="r1"), timeout=10)
        assert sorted(ex.running_task_ids) == sorted([a, b])
        r2x = await s.GetExecutor(pb.GetExecutorRequest(name="r2"), timeout=10)
        assert list(r2x.running_task_ids) == []
        # r2 still works for itself; r1's own results land.
        r1.finish(a, 1)
        r1.finish(b, 1, result={"real": True})
        await r1.recv("ack")
        await r1.recv("ack")
        t = await s.GetTask(pb.GetTaskRequest(task_id=b), timeout=10)
        assert t.state == cpb.TASK_STATE_SUCCEEDED and dict(t.result) == {"real": True}
        with_r2 = await submit(s, shell("c"), shell("d"))
        got = await asyncio.gather(r1.assign(), r2.assign())
        assert sorted(x.task_id for x in got) == sorted(with_r2)
        await r1.close()
        await r2.close()
        await ch.close()

    run(go())
    ctl.wait_for(r"runner certificate r2 \(executor r2\) reported a running attempt in its Hello for task 1")
    ctl.wait_for(r"runner certificate r2 \(executor r2\) reported a result in its Hello for task 2")
