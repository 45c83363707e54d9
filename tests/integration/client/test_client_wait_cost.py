"""A wait costs what it asks for: on a store of 20,000 tasks, waiting for one reads that one (sync and async)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from dtask.v1 import controller_pb2 as pb
from dtask_client import AsyncController, Controller
from dtask_common.models import TaskSpec, TaskState
from dtask_common.server import client_options
from dtask_common.tls import channel_credentials

from tests.integration.client.cluster import Cluster, start_runner, wait_for_executors
from tests.stored_tasks import fill_store
from tests.support import copy_certs, free_port_range, start_controller, sync_channel, tls

STORED = 20_000


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory, certs_template: Path) -> Iterator[Cluster]:
    """A controller whose store already holds 20,000 finished tasks, and one runner."""
    home = copy_certs(certs_template, tmp_path_factory.mktemp("big") / "home")
    fill_store(home / "controller.db", STORED)
    ctl = start_controller(home, port_range=free_port_range())
    runner = None
    try:
        runner = start_runner(home, ctl.address, "r1", 1)
        wait_for_executors(ctl.address, home / "certs", {"r1"})
        yield Cluster(home, ctl, [runner])
    finally:
        if runner is not None:
            runner.stop()
        ctl.stop()


class Recorded:
    """A response stream that keeps each Watch message it passes on (everything else is the call's)."""

    def __init__(self, call: Any, seen: list[pb.WatchEvent]):
        self._call, self._seen = call, seen
        self._it: Any = None

    def __iter__(self) -> Recorded:
        return self

    def __next__(self) -> Any:
        msg = next(self._call)
        self._seen.append(msg)
        return msg

    def __aiter__(self) -> Recorded:
        self._it = self._call.__aiter__()
        return self

    async def __anext__(self) -> Any:
        msg = await self._it.__anext__()
        self._seen.append(msg)
        return msg

    def __getattr__(self, name: str) -> Any:
        return getattr(self._call, name)


class WatchRecorder(grpc.UnaryStreamClientInterceptor):  # type: ignore[misc]
    """Records the requests and messages of every Watch call on a channel."""

    def __init__(self) -> None:
        self.requests: list[pb.WatchRequest] = []
        self.messages: list[pb.WatchEvent] = []

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return self.record(continuation(details, request), request)

    def record(self, call: Any, request: Any) -> Any:
        if not isinstance(request, pb.WatchRequest):
            return call
        self.requests.append(request)
        return Recorded(call, self.messages)

    def snapshot_tasks(self) -> list[str]:
        return [t.id for m in self.messages if m.WhichOneof("event") == "snapshot" for t in m.snapshot.tasks]


class AsyncWatchRecorder(grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[misc]
    """The same on a grpc.aio channel."""

    def __init__(self, rec: WatchRecorder):
        self.rec = rec

    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return self.rec.record(await continuation(details, request), request)


def test_waiting_for_one_task_reads_that_task_alone(big: Cluster) -> None:
    rec = WatchRecorder()
    channel = grpc.intercept_channel(sync_channel(big.address, tls(big.certs, "operator")), rec)
    with Controller(big.address, channel=channel) as c:
        tid = c.add_task(TaskSpec(name="one", shell="true"))
        (done,) = c.wait([tid], timeout=30)
        assert done.id == tid and done.state is TaskState.SUCCEEDED
    channel.close()
    assert [list(r.task_ids) for r in rec.requests] == [[tid]]
    assert rec.requests[0].exclude_usage and rec.requests[0].exclude_executors
    assert rec.snapshot_tasks() == [tid]  # not the 20,000 stored before it
    assert sum(m.ByteSize() for m in rec.messages) < 10_000


def test_the_async_wait_reads_its_tasks_alone_too(big: Cluster) -> None:
    rec = WatchRecorder()

    async def go() -> list[str]:
        files = tls(big.certs, "operator")
        channel = grpc.aio.secure_channel(
            big.address, channel_credentials(files), options=client_options(), interceptors=[AsyncWatchRecorder(rec)]
        )
        async with AsyncController(big.address, channel=channel) as c:
            ids = await c.add_tasks([TaskSpec(name=f"a{i}", shell="true") for i in range(3)])
            done = await c.wait(ids, timeout=30)
            assert [t.state for t in done] == [TaskState.SUCCEEDED] * 3
        await channel.close()
        return ids

    ids = asyncio.run(go())
    assert [list(r.task_ids) for r in rec.requests] == [ids]
    assert rec.snapshot_tasks() == ids
