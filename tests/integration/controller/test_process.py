"""The controller process: kill -9 and restart lose nothing acknowledged, one controller per store,
graceful stop with open streams, and a task file queued at start."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

from dtask.v1 import common_pb2 as cpb
from dtask.v1 import controller_pb2 as pb

from tests.integration.controller.conftest import start_fast_controller
from tests.integration.controller.helpers import run, shell, stub, submit
from tests.integration.controller.scripted_runner import ScriptedRunner
from tests.support import free_port_range, start_dtask


def test_kill_9_and_restart_loses_nothing_acknowledged(home: Path) -> None:
    ports = free_port_range()
    ctl = start_fast_controller(home, port_range=ports)

    async def before() -> list[str]:
        ch, s = stub(ctl.address, home)
        r1 = ScriptedRunner(ctl.address, home / "certs", "r1", slots=2)
        await r1.connect()
        ids = await submit(s, *[shell(f"t{i}") for i in range(50)])
        a, _ = await r1.assign(), await r1.assign()
        r1.output(a.task_id, 1, 0, b"partial output\n")
        r1.finish(a.task_id, 1, result={"acc": 0.5})
        await r1.recv("ack")  # acknowledged: must survive
        await r1.recv("assign")
        await s.PauseQueue(pb.PauseQueueRequest())
        await ch.close()
        return ids

    try:
        ids = run(before())
        ctl.kill9()
    finally:
        ctl.stop()
    ctl2 = start_fast_controller(home, port_range=ports)

    async def after() -> None:
        ch, s = stub(ctl2.address, home)
        t1 = await s.GetTask(pb.GetTaskRequest(task_id=ids[0]))
        assert t1.state == cpb.TASK_STATE_SUCCEEDED and t1.result["acc"] == 0.5
        out = [c async for c in s.GetTaskOutput(pb.GetTaskOutputRequest(task_id=ids[0]))]
        assert b"".join(c.data for c in out) == b"partial output\n"
        q = (await s.IsFinished(pb.IsFinishedRequest())).queue
        assert (q.paused, q.succeeded, q.running, q.pending) == (True, 1, 2, 47)
        # The runner comes back still running task 2; task 3's attempt it no longer has: LOST.
        r1 = ScriptedRunner(ctl2.address, home / "certs", "r1", slots=2, running=[(ids[1], 1)])
        await r1.connect()
        t3 = await s.GetTask(pb.GetTaskRequest(task_id=ids[2]))
        assert t3.state == cpb.TASK_STATE_LOST and t3.attempts[0].state == cpb.TASK_STATE_LOST
        r1.finish(ids[1], 1)
        await r1.recv("ack")
        assert (await s.GetTask(pb.GetTaskRequest(task_id=ids[1]))).state == cpb.TASK_STATE_SUCCEEDED
        (new,) = await submit(s, shell("after-restart"))
        assert int(new) == 51
        await r1.close()
        await ch.close()

    try:
        run(after())
        ctl2.wait_for(r"store .*: 47 pending, 2 running on 1 executors, 1 finished \(queue paused\)")
    finally:
        ctl2.stop()


def test_second_controller_on_same_store_refuses(home: Path) -> None:
    first = start_fast_controller(home)
    try:
        lo, hi = free_port_range()
        second = start_dtask(["controller", "--host", "127.0.0.1", "--port-range", f"{lo}-{hi}"], home, listen=False)
        assert second.popen.wait(30) != 0
        out = "".join(second.lines) + (second.popen.stdout.read() if second.popen.stdout else "")
        assert "another controller" in out and "controller.db" in out and "Traceback" not in out
    finally:
        first.stop()


def test_sigterm_stops_promptly_with_open_streams(home: Path) -> None:
    ctl = start_fast_controller(home)

    async def go() -> float:
        vch, viewer = stub(ctl.address, home, "viewer")
        watch = viewer.Watch(pb.WatchRequest())
        await asyncio.wait_for(watch.read(), 10)
        r1 = ScriptedRunner(ctl.address, home / "certs", "r1")
        await r1.connect()
        ch, s = stub(ctl.address, home)
        (tid,) = await submit(s, shell("long"))
        await r1.assign()
        follow = s.GetTaskOutput(pb.GetTaskOutputRequest(task_id=tid, follow=True))
        r1.output(tid, 1, 0, b"x")
        assert (await asyncio.wait_for(follow.read(), 10)).data == b"x"
        start = time.monotonic()
        ctl.popen.send_signal(signal.SIGTERM)
        code = await asyncio.get_running_loop().run_in_executor(None, ctl.popen.wait, 15)
        assert code == 0
        await r1.drop()
        await vch.close()
        await ch.close()
        return time.monotonic() - start

    try:
        took = run(go())
        assert took < 2.5, f"stopping took {took:.1f}s"  # under the 3 s grace: no stream held it up
        ctl.wait_for("controller stopped")
    finally:
        ctl.stop()


def test_task_file_is_queued_once_at_start(home: Path, tmp_path: Path) -> None:
    tasks = tmp_path / "tasks.toml"
    tasks.write_text(
        '[[task]]\nname = "prep"\ncommand = "true"\n\n'
        '[[task]]\nname = "train"\ncommand = "python t.py --lr {lr}"\ndepends_on = ["prep"]\n'
        "[task.matrix]\nlr = [0.1, 0.01]\n"
    )
    ports = free_port_range()
    for round_ in range(2):
        ctl = start_fast_controller(home, "--tasks", str(tasks), port_range=ports)
        try:

            async def check(address: str) -> None:
                ch, s = stub(address, home)
                listed = await s.ListTasks(pb.ListTasksRequest())
                assert listed.total == 3
                names = [t.spec.name for t in listed.tasks]
                assert names[0] == "prep" and all(n.startswith("train[") for n in names[1:])
                assert all(list(t.spec.depends_on) for t in listed.tasks[1:])
                await ch.close()

            run(check(ctl.address))
            if round_:
                ctl.wait_for("already queued in this store")
        finally:
            ctl.stop()
