"""Both clients ride out a controller restart: a wait and a list call in flight complete once it is back."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from dtask_client import AsyncController, Controller
from dtask_common.models import TaskSpec, TaskState

from tests.integration.client.cluster import wait_for_executors
from tests.support import Proc, free_port_range, runner_proc, start_controller


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
