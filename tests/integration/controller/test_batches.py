"""Batches on a runner session against a real controller: a RunnerBatch of results is committed and acked
(the acks, and the assignments that refill the slots, in one ControllerBatch); a batch holding a batch or a
Hello is refused whole."""

from __future__ import annotations

from pathlib import Path

import grpc
from dtask.v1 import common_pb2 as cpb
from dtask.v1 import controller_pb2 as pb

from tests.integration.controller.helpers import run, shell, state, stub, submit
from tests.integration.controller.scripted_runner import ScriptedRunner, finished_msg
from tests.support import Proc


def test_a_batch_of_results_is_committed_and_acked_in_one_batch(ctl: Proc, home: Path) -> None:
    async def go() -> None:
        ch, s = stub(ctl.address, home)
        r1 = ScriptedRunner(ctl.address, home / "certs", "r1", slots=3)
        await r1.connect()
        ids = await submit(s, *(shell(f"t{i}") for i in range(6)))
        first = [await r1.assign() for _ in range(3)]
        assert sorted(a.task_id for a in first) == ids[:3]
        r1.send_batch(
            pb.RunnerMessage(output=pb.OutputChunk(task_id=ids[0], attempt=1, offset=0, data=b"hello\n")),
            *(pb.RunnerMessage(finished=finished_msg(t, 1, result={"n": int(t)})) for t in ids[:3]),
            pb.RunnerMessage(progress=pb.ProgressUpdate(task_id=ids[0], attempt=1)),  # too late: ignored
        )
        acked, assigned = [], []
        while len(acked) < 3 or len(assigned) < 3:
            msg = await r1.recv()
            kind = msg.WhichOneof("msg")
            (acked if kind == "ack" else assigned).append(getattr(msg, kind).task_id)
        assert sorted(acked) == ids[:3] and sorted(assigned) == ids[3:]
        # One commit for the three results, then everything it tells this runner in one message.
        assert sorted(r1.batches[-1]) == ["ack"] * 3 + ["assign"] * 3, r1.batches
        for t in ids[:3]:
            task = await s.GetTask(pb.GetTaskRequest(task_id=t), timeout=10)
            assert task.state == cpb.TASK_STATE_SUCCEEDED and task.result["n"] == int(t)
        out = [c async for c in s.GetTaskOutput(pb.GetTaskOutputRequest(task_id=ids[0], attempt=1), timeout=10)]
        assert b"".join(c.data for c in out) == b"hello\n"
        await r1.close()
        await ch.close()

    run(go())


def test_a_batch_holding_a_batch_or_a_hello_is_refused_whole(ctl: Proc, home: Path) -> None:
    async def go() -> None:
        ch, s = stub(ctl.address, home)
        r1 = ScriptedRunner(ctl.address, home / "certs", "r1", slots=1)
        await r1.connect()
        (tid,) = await submit(s, shell("a"))
        await r1.assign()
        inner = pb.RunnerMessage(batch=pb.RunnerBatch(messages=[pb.RunnerMessage(finished=finished_msg(tid, 1))]))
        r1.send_batch(pb.RunnerMessage(finished=finished_msg(tid, 1)), inner)
        try:
            await r1.recv(timeout=10)
            raise AssertionError("the session went on after a nested batch")
        except grpc.aio.AioRpcError as exc:
            assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT, exc
            assert "message 2 of a RunnerBatch of 2 is a batch" in (exc.details() or ""), exc.details()
        assert await state(s, tid) == cpb.TASK_STATE_RUNNING  # nothing of the batch was applied
        await r1.drop()

        again = ScriptedRunner(ctl.address, home / "certs", "r1", slots=1, running=[(tid, 1)])
        await again.connect()
        again.send_batch(pb.RunnerMessage(finished=finished_msg(tid, 1)), pb.RunnerMessage(hello=again.hello))
        try:
            await again.recv(timeout=10)
            raise AssertionError("the session went on after a Hello in a batch")
        except grpc.aio.AioRpcError as exc:
            assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT, exc
            assert "is a hello; a batch never holds a batch or a Hello" in (exc.details() or ""), exc.details()
        assert await state(s, tid) == cpb.TASK_STATE_RUNNING
        await again.drop()
        ctl.wait_for(r"executor r1 session ended: message 2 of a RunnerBatch of 2 is a hello")
        await ch.close()

    run(go())
