"""The asyncio AsyncController: the same API as coroutines and async iterators, against a real cluster."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from dtask_client import AsyncController, Conflict, ControllerUnavailable, NotFound, WaitTimeout
from dtask_common.events import Snapshot
from dtask_common.models import ExecutorState, TaskSpec, TaskState

from tests.integration.client.cluster import Cluster
from tests.support import Proc

PY = sys.executable


def test_async_client(live: Cluster) -> None:
    async def scenario() -> None:
        async with AsyncController(live.address, certs=live.certs) as c:
            assert (await c.whoami()).role == "operator"
            assert "r1" in {e.name for e in await c.executors()}
            assert (await c.executor("r1")).name == "r1"
            assert isinstance(await c.finished(), bool)
            assert (await c.queue()).paused is False
            ids = await c.submit(
                [
                    TaskSpec(name="a-ok", argv=(PY, "-u", "-c", "print('x'); print('y')"), tags=("async",)),
                    TaskSpec(name="a-bad", shell="exit 4", tags=("async",)),
                ]
            )
            done = await c.wait(ids, timeout=30)
            assert [t.state for t in done] == [TaskState.SUCCEEDED, TaskState.FAILED]
            assert {t.id for t in await c.tasks(tag="async")} == set(ids)
            assert set(ids) <= {t.id for t in await c.tasks_finished()}
            assert not set(ids) & {t.id for t in await c.tasks_pending() + await c.tasks_running()}
            assert (await c.task(ids[0])).name == "a-ok"
            out = b"".join([d async for d in c.logs(ids[0])])
            assert out.split() == [b"x", b"y"]
            with pytest.raises(Conflict):
                await c.cancel(ids[0])
            assert (await c.retry(ids[1])).state in (TaskState.PENDING, TaskState.RUNNING)
            [sleeper] = await c.submit(TaskSpec(name="a-sleep", shell="sleep 60", tags=("async",)))
            with pytest.raises(WaitTimeout):
                await c.wait([sleeper], timeout=0.5)
            await c.cancel(sleeper)
            assert (await c.wait([sleeper], timeout=20))[0].state is TaskState.CANCELLED
            assert (await c.drain("r1")).state is ExecutorState.DRAINING
            assert (await c.drain("r1", undrain=True)).state is not ExecutorState.DRAINING
            assert (await c.pause()).paused and not (await c.resume()).paused
            usage = await c.resource_usage()
            assert "r1" in {u.executor for u in usage}
            async for event in c.watch():
                assert isinstance(event.body, Snapshot)
                break
            with pytest.raises(NotFound):
                await c.task("987654321")

    asyncio.run(asyncio.wait_for(scenario(), 60))


def test_async_wait_reports_a_stopped_controller_as_unavailable(home: Path, controller: Proc) -> None:
    """AsyncController.wait waits for a lost controller up to its timeout: one that stays away is ControllerUnavailable."""

    async def scenario() -> None:
        async with AsyncController(controller.address, certs=home / "certs") as c:
            [tid] = await c.submit(TaskSpec(name="never-runs", shell="true"))  # no runner: stays pending
            watching = asyncio.Event()
            waiter = asyncio.create_task(c.wait([tid], on_change=lambda _: watching.set()))
            await asyncio.wait_for(watching.wait(), 20)
            await asyncio.to_thread(controller.stop)
            with pytest.raises(ControllerUnavailable):
                await asyncio.wait_for(waiter, 20)

    asyncio.run(scenario())
