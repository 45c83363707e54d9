"""Both clients ride out a controller restart: a wait and a list call in flight complete once it is back."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from dtask.v1 import common_pb2 as cpb
from dtask.v1 import controller_pb2_grpc
from dtask_client import AsyncController, Controller
from dtask_client import _calls as calls
from dtask_common.events import TaskEvent, TaskEventKind
from dtask_common.models import TaskSpec, TaskState

from tests.integration.client.cluster import wait_for_executors
from tests.support import Proc, free_port_range, runner_proc, start_controller, sync_channel, tls


def restarted(home: Path, ctl: Proc, port: int) -> Proc:
    """Stop the controller and start it again on the same port and store."""
    ctl.stop()
    return start_controller(home, port_range=(port, port))


def test_async_wait_and_list_ride_out_a_controller_restart(home: Path) -> None:
    port, _ = free_port_range(1)
    ctl = start_controller(home, port_range=(port, port))
    lost: list[str] = []

    async def scenario() -> None:
        nonlocal ctl
        async with AsyncController(ctl.address, certs=home / "certs", timeout=30) as c:
            c.on_reconnect = lost.append
            [tid] = await c.submit(TaskSpec(name="survivor", shell="true"))  # no runner: stays pending
            watching = asyncio.Event()
            waiter = asyncio.create_task(c.wait([tid], timeout=60, on_change=lambda _: watching.set()))
            await asyncio.wait_for(watching.wait(), 20)
            await asyncio.to_thread(ctl.stop)
            lister = asyncio.create_task(c.tasks())  # sent while the controller is down
            await asyncio.sleep(0.2)
            assert not lister.done()
            ctl = await asyncio.to_thread(start_controller, home, port_range=(port, port))
            assert [t.id for t in await asyncio.wait_for(lister, 30)] == [tid]
            assert not waiter.done()
            await c.cancel(tid)
            [done] = await asyncio.wait_for(waiter, 30)
            assert done.state is TaskState.CANCELLED

    try:
        asyncio.run(scenario())
    finally:
        ctl.stop()
    assert lost and ctl.address in lost[0]


def test_sync_list_call_rides_out_a_controller_restart(home: Path) -> None:
    port, _ = free_port_range(1)
    ctl = start_controller(home, port_range=(port, port))
    try:
        with Controller(ctl.address, certs=home / "certs", timeout=30) as c:
            [tid] = c.submit(TaskSpec(name="kept", shell="true"))
            ctl.stop()
            got: dict[str, object] = {}
            lister = threading.Thread(target=lambda: got.update(tasks=c.tasks()), daemon=True)
            lister.start()  # sent while the controller is down
            lister.join(0.2)
            assert lister.is_alive()
            ctl = start_controller(home, port_range=(port, port))
            lister.join(30)
            assert [t.id for t in got["tasks"]] == [tid]  # type: ignore[attr-defined]
            assert c.queue().pending == 1
    finally:
        ctl.stop()


def test_async_follow_rides_out_a_controller_restart_without_repeating_output(home: Path, tmp_path: Path) -> None:
    port, _ = free_port_range(1)
    ctl = start_controller(home, port_range=(port, port))
    runner = runner_proc(home, ctl.address, "r1", "--gpus", "none", wait=False)
    mark = tmp_path / "go-on"

    async def scenario() -> bytes:
        nonlocal ctl
        async with AsyncController(ctl.address, certs=home / "certs", timeout=30) as c:
            tid = await c.add_task(f"echo first; while [ ! -e {mark} ]; do sleep 0.05; done; echo second; echo third")
            out = c.logs(tid, follow=True)
            seen = await asyncio.wait_for(anext(out), 20)
            await asyncio.to_thread(ctl.stop)
            ctl = await asyncio.to_thread(start_controller, home, port_range=(port, port))
            await asyncio.to_thread(wait_for_executors, ctl.address, home / "certs", {"r1"})
            mark.touch()
            async for data in out:
                seen += data
            return seen

    try:
        wait_for_executors(ctl.address, home / "certs", {"r1"})
        assert asyncio.run(asyncio.wait_for(scenario(), 60)) == b"first\nsecond\nthird\n"
    finally:
        runner.stop()
        ctl.stop()


def test_a_plain_wait_is_told_of_a_retry_and_rides_out_a_restart(home: Path) -> None:
    """A wait with no callback asks for the ends of its tasks alone (exclude_unfinished): a finished task an
    operator retries is still sent (the Watch it opens gets RETRIED), so the wait does not return with that
    task's old end; across a controller restart it waits on until both tasks end."""
    port, _ = free_port_range(1)
    ctl = start_controller(home, port_range=(port, port))
    try:
        with Controller(ctl.address, certs=home / "certs", timeout=30) as c:
            a, b = c.submit([TaskSpec(name="a", shell="true"), TaskSpec(name="b", shell="true")])  # no runner
            c.cancel(a)
            call = calls.watch_for([a, b], False, every_change=False)
            assert call.request.exclude_unfinished
            with sync_channel(ctl.address, tls(home / "certs", "operator")) as ch:
                stream = controller_pb2_grpc.ControllerStub(ch).Watch(call.request, timeout=30)
                snap = next(stream)
                assert {t.id: t.state for t in snap.snapshot.tasks} == {
                    a: cpb.TASK_STATE_CANCELLED,
                    b: cpb.TASK_STATE_PENDING,
                }
                got: dict[str, object] = {}
                waiter = threading.Thread(target=lambda: got.update(done=c.wait([a, b], timeout=60)), daemon=True)
                waiter.start()
                c.retry(a)
                [retried] = call.convert(next(stream))
                assert isinstance(retried.body, TaskEvent) and retried.body.kind is TaskEventKind.RETRIED
                assert retried.body.task.state is TaskState.PENDING
                stream.cancel()
            ctl = restarted(home, ctl, port)
            assert c.queue().pending == 2  # (a read is sent again until the channel is back; a cancel is not)
            c.cancel(b)
            waiter.join(0.5)
            assert waiter.is_alive()  # a is pending again: not done with b's end alone
            c.cancel(a)
            waiter.join(30)
            assert [(t.id, t.state) for t in got["done"]] == [(a, TaskState.CANCELLED), (b, TaskState.CANCELLED)]  # type: ignore[attr-defined]
    finally:
        ctl.stop()


def test_a_plain_wait_for_every_task_is_told_of_a_task_added_meanwhile(home: Path) -> None:
    """A wait for every task asks for the ends alone too, and still hears of tasks added while it waits."""
    ctl = start_controller(home, port_range=free_port_range(1))
    try:
        with Controller(ctl.address, certs=home / "certs", timeout=30) as c:
            [a] = c.submit([TaskSpec(name="a", shell="true")])  # no runner
            call = calls.watch_for(None, False, every_change=False)
            assert call.request.exclude_unfinished and not call.request.task_ids
            with sync_channel(ctl.address, tls(home / "certs", "operator")) as ch:
                stream = controller_pb2_grpc.ControllerStub(ch).Watch(call.request, timeout=30)
                assert [t.id for t in next(stream).snapshot.tasks] == [a]
                got: dict[str, object] = {}
                waiter = threading.Thread(target=lambda: got.update(done=c.wait(timeout=60)), daemon=True)
                waiter.start()
                [b] = c.submit([TaskSpec(name="b", shell="true")])
                [added] = call.convert(next(stream))
                assert isinstance(added.body, TaskEvent) and added.body.kind is TaskEventKind.ADDED
                assert added.body.task.id == b
                stream.cancel()
            c.cancel(a)
            waiter.join(0.5)
            assert waiter.is_alive()  # b is still pending
            c.cancel(b)
            waiter.join(30)
            assert [(t.id, t.state) for t in got["done"]] == [(a, TaskState.CANCELLED), (b, TaskState.CANCELLED)]  # type: ignore[attr-defined]
    finally:
        ctl.stop()


def test_a_follow_whose_attempt_ends_while_the_controller_restarts_still_gets_its_last_output(
    home: Path, tmp_path: Path
) -> None:
    """A stopping controller ends its follow streams as if the attempts had ended. When the attempt does end
    before the follow reads on (after the restart), the follow still passes on what it printed meanwhile."""
    port, _ = free_port_range(1)
    ctl = start_controller(home, port_range=(port, port))
    runner = runner_proc(home, ctl.address, "r1", "--gpus", "none", wait=False)
    mark = tmp_path / "go-on"
    try:
        wait_for_executors(ctl.address, home / "certs", {"r1"})
        for make in (Controller, "async"):
            with Controller(ctl.address, certs=home / "certs", timeout=30) as c:
                tid = c.add_task(f"echo first; while [ ! -e {mark} ]; do sleep 0.05; done; echo second; echo third")
            mark.unlink(missing_ok=True)
            if make is Controller:
                with Controller(ctl.address, certs=home / "certs", timeout=30) as c:
                    out = c.logs(tid, follow=True)
                    seen = next(out)
                    ctl = restarted(home, ctl, port)
                    wait_for_executors(ctl.address, home / "certs", {"r1"})
                    mark.touch()
                    with Controller(ctl.address, certs=home / "certs", timeout=30) as other:
                        [done] = other.wait([tid], timeout=30)  # ended before the follow reads on
                    seen += b"".join(out)
            else:

                async def follow(tid: str = tid) -> bytes:
                    nonlocal ctl
                    async with AsyncController(ctl.address, certs=home / "certs", timeout=30) as ac:
                        out = ac.logs(tid, follow=True)
                        seen = await asyncio.wait_for(anext(out), 20)
                        ctl = await asyncio.to_thread(restarted, home, ctl, port)
                        await asyncio.to_thread(wait_for_executors, ctl.address, home / "certs", {"r1"})
                        mark.touch()
                        [done] = await ac.wait([tid], timeout=30)  # ended before the follow reads on
                        assert done.state is TaskState.SUCCEEDED
                        async for data in out:
                            seen += data
                        return seen

                seen = asyncio.run(asyncio.wait_for(follow(), 60))
            assert seen == b"first\nsecond\nthird\n", make
    finally:
        runner.stop()
        ctl.stop()
