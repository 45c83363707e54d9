"""The query and command API against a real controller: Watch, output follow, error codes, grpcurl."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import grpc
import pytest
from dtask.v1 import common_pb2 as cpb
from dtask.v1 import controller_pb2 as pb

from tests.integration.controller.helpers import run, shell, stub, submit
from tests.integration.controller.scripted_runner import ScriptedRunner
from tests.support import Proc, grpcurl_args, tls


def test_watch_snapshot_then_events_in_order(ctl: Proc, home: Path) -> None:
    async def go() -> None:
        ch, s = stub(ctl.address, home)
        vch, viewer = stub(ctl.address, home, "viewer")
        before = await submit(s, *[shell(f"t{i}") for i in range(1200)])  # snapshot spans 3 pieces
        watch = viewer.Watch(pb.WatchRequest())
        pieces = []
        while True:
            ev = await asyncio.wait_for(watch.read(), 10)
            assert ev.WhichOneof("event") == "snapshot"
            pieces.append(ev)
            if ev.snapshot.last:
                break
        assert len(pieces) == 3 and len({p.seq for p in pieces}) == 1
        assert [t.id for p in pieces for t in p.snapshot.tasks] == before
        assert pieces[0].snapshot.queue.pending == 1200
        await s.CancelTask(pb.CancelTaskRequest(task_id=before[0]), timeout=10)
        (new,) = await submit(s, shell("late", priority=10))
        r1 = ScriptedRunner(ctl.address, home / "certs", "r1")
        await r1.connect()
        a = await r1.assign()
        assert a.task_id == new
        r1.progress(new, 1, 5, 10)
        r1.usage(cpu=7.0)
        r1.finish(new, 1)
        await r1.recv("ack")
        seen: list[tuple[str, str]] = []
        last_seq = pieces[0].seq
        while ("task", "finished:" + new) not in seen:
            ev = await asyncio.wait_for(watch.read(), 10)
            assert ev.seq > last_seq
            last_seq = ev.seq
            kind = ev.WhichOneof("event")
            if kind == "task":
                seen.append(("task", f"{pb.TaskEvent.Kind.Name(ev.task.kind)[5:].lower()}:{ev.task.task.id}"))
            elif kind == "executor":
                seen.append(("executor", pb.ExecutorEvent.Kind.Name(ev.executor.kind)[5:].lower()))
            elif kind == "progress":
                seen.append(("progress", str(ev.progress.progress.step)))
            elif kind == "usage":
                seen.append(("usage", str(ev.usage.sample.cpu_percent)))
        order = [x for x in seen if x[0] != "executor" or x[1] == "up"]
        assert order == [
            ("task", f"cancelled:{before[0]}"),
            ("task", f"added:{new}"),
            ("executor", "up"),
            ("task", f"dispatched:{new}"),
            ("progress", "5"),
            ("usage", "7.0"),
            ("task", f"finished:{new}"),
        ]
        watch.cancel()
        await r1.close()
        await ch.close()
        await vch.close()

    run(go())


def test_output_tail_and_follow(ctl: Proc, home: Path) -> None:
    async def go() -> None:
        ch, s = stub(ctl.address, home)
        (tid,) = await submit(s, shell("talk"))
        follow = s.GetTaskOutput(pb.GetTaskOutputRequest(task_id=tid, follow=True))  # pending: waits for dispatch
        r1 = ScriptedRunner(ctl.address, home / "certs", "r1")
        await r1.connect()
        await r1.assign()
        r1.output(tid, 1, 0, b"hello ")
        got = b""
        while got != b"hello ":
            chunk = await asyncio.wait_for(follow.read(), 10)
            got += chunk.data
        r1.output(tid, 1, 6, b"world \xff\n")
        r1.output(tid, 1, 0, b"hello ")  # a resend after a reconnect is not duplicated
        while got != b"hello world \xff\n":
            chunk = await asyncio.wait_for(follow.read(), 10)
            got += chunk.data
        r1.finish(tid, 1)
        assert await asyncio.wait_for(follow.read(), 10) is grpc.aio.EOF  # the attempt ended: the stream ends
        await r1.recv("ack")
        stored = [c async for c in s.GetTaskOutput(pb.GetTaskOutputRequest(task_id=tid, attempt=1))]
        assert b"".join(c.data for c in stored) == b"hello world \xff\n" and stored[0].offset == 0
        await r1.close()
        await ch.close()

    run(go())


def test_error_codes(ctl: Proc, home: Path) -> None:
    async def code_of(coro) -> tuple[grpc.StatusCode, str, grpc.aio.AioRpcError]:  # type: ignore[no-untyped-def]
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await coro
        return exc.value.code(), exc.value.details() or "", exc.value

    async def go() -> None:
        ch, s = stub(ctl.address, home)
        nf = grpc.StatusCode.NOT_FOUND
        assert (await code_of(s.GetTask(pb.GetTaskRequest(task_id="999"))))[0] == nf
        assert (await code_of(s.CancelTask(pb.CancelTaskRequest(task_id="999"))))[0] == nf
        assert (await code_of(s.RetryTask(pb.RetryTaskRequest(task_id="999"))))[0] == nf
        # not an id at all: refused as such, not looked up
        assert (await code_of(s.RetryTask(pb.RetryTaskRequest(task_id="abc"))))[0] == grpc.StatusCode.INVALID_ARGUMENT
        assert (await code_of(s.GetExecutor(pb.GetExecutorRequest(name="nope"))))[0] == nf
        code, msg, _ = await code_of(s.DrainExecutor(pb.DrainExecutorRequest(name="nope")))
        assert code == nf and "ListExecutors" in msg
        assert (await code_of(s.GetResourceUsage(pb.GetResourceUsageRequest(executor="nope"))))[0] == nf
        tasks = [shell("ok"), cpb.TaskSpec(name="empty"), shell("dep", depends_on=["missing"]), shell("ok")]
        code, msg, err = await code_of(s.SubmitTasks(pb.SubmitTasksRequest(tasks=tasks)))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and msg.startswith("3 of 4 tasks are invalid")
        raw = dict(err.trailing_metadata() or ())["dtask-task-errors-bin"]
        errors = pb.TaskErrors.FromString(raw).errors
        assert {(e.index, e.field) for e in errors} >= {(1, "command"), (2, "depends_on[0]"), (3, "name")}
        assert (await s.ListTasks(pb.ListTasksRequest())).total == 0  # nothing was stored
        cyc = [shell("a", depends_on=["b"]), shell("b", depends_on=["a"])]
        code, msg, _ = await code_of(s.SubmitTasks(pb.SubmitTasksRequest(tasks=cyc)))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "cycle" in msg
        code, msg, _ = await code_of(s.SubmitTasks(pb.SubmitTasksRequest(tasks=[shell("x")] * 10_001)))
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "split the batch" in msg
        huge = [shell(f"h{i}", "echo " + "x" * 100_000) for i in range(200)]  # 20 MB: over the 16 MiB limit
        code, msg, _ = await code_of(s.SubmitTasks(pb.SubmitTasksRequest(tasks=huge)))
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
        code, msg, _ = await code_of(s.ListTasks(pb.ListTasksRequest(page_token="garbage")))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "next_page_token" in msg
        (tid,) = await submit(s, shell("one"))
        await s.CancelTask(pb.CancelTaskRequest(task_id=tid))
        code, msg, _ = await code_of(s.CancelTask(pb.CancelTaskRequest(task_id=tid)))
        assert code == grpc.StatusCode.FAILED_PRECONDITION and "already cancelled" in msg
        (tid2,) = await submit(s, shell("two"))
        code, msg, _ = await code_of(s.RetryTask(pb.RetryTaskRequest(task_id=tid2)))
        assert code == grpc.StatusCode.FAILED_PRECONDITION and "still pending" in msg
        code, msg, _ = await code_of(_first(s.GetTaskOutput(pb.GetTaskOutputRequest(task_id=tid2))))
        assert code == grpc.StatusCode.FAILED_PRECONDITION and "has not run yet" in msg
        # Runner sessions: a Hello naming another executor, and an incompatible protocol.
        liar = ScriptedRunner(ctl.address, home / "certs", "r1", hello_name="r2")
        code, msg, _ = await code_of(liar.connect())
        assert code == grpc.StatusCode.PERMISSION_DENIED and "certificate is for 'r1'" in msg
        for theirs in (99, 1):  # 1: a runner from before batched session messages
            old = ScriptedRunner(ctl.address, home / "certs", "r1", protocol_version=theirs)
            code, msg, _ = await code_of(old.connect())
            assert code == grpc.StatusCode.FAILED_PRECONDITION
            assert f"protocol {theirs}" in msg and "controller" in msg and "protocol 2" in msg
        await ch.close()

    async def _first(stream):  # type: ignore[no-untyped-def]
        async for item in stream:
            return item

    run(go())


def test_grpcurl_serves_queries_with_operator_certificate(ctl: Proc, home: Path) -> None:
    base = [*grpcurl_args(tls(home / "certs", "operator")), "-max-time", "20"]

    def call(method: str, body: str = "{}") -> dict:  # type: ignore[type-arg]
        out = subprocess.run(
            [*base, "-d", body, ctl.address, f"dtask.v1.Controller/{method}"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout) if out.stdout.strip() else {}

    ids = call("SubmitTasks", json.dumps({"tasks": [{"name": "g", "shell": "true", "tags": ["x"]}]}))["taskIds"]
    assert call("ListTasks", '{"states": ["TASK_STATE_PENDING"]}')["tasks"][0]["id"] == ids[0]
    assert call("GetTask", json.dumps({"taskId": ids[0]}))["state"] == "TASK_STATE_PENDING"
    assert call("IsFinished")["queue"]["pending"] == "1"
    assert call("ListExecutors") == {}
    assert call("GetResourceUsage") == {}
    out = subprocess.run(
        [*base, "-max-time", "2", ctl.address, "dtask.v1.Controller/Watch"], capture_output=True, text=True, timeout=30
    )
    assert '"snapshot"' in out.stdout and '"last": true' in out.stdout
