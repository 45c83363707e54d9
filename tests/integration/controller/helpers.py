"""Small helpers for controller integration tests: operator/viewer stubs and task specs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import grpc
from dtask.v1 import common_pb2 as cpb
from dtask.v1 import controller_pb2 as pb
from dtask.v1 import controller_pb2_grpc

from tests.support import aio_channel, tls

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def stub(
    address: str, home: Path, role: str = "operator"
) -> tuple[grpc.aio.Channel, controller_pb2_grpc.ControllerStub]:
    ch = aio_channel(address, tls(home / "certs", role))
    return ch, controller_pb2_grpc.ControllerStub(ch)


def shell(name: str, cmd: str = "true", **kw: Any) -> cpb.TaskSpec:
    return cpb.TaskSpec(name=name, shell=cmd, **kw)


async def submit(s: controller_pb2_grpc.ControllerStub, *specs: cpb.TaskSpec) -> list[str]:
    resp = await s.SubmitTasks(pb.SubmitTasksRequest(tasks=list(specs)), timeout=10)
    return list(resp.task_ids)


async def until(check: Callable[[], Coroutine[Any, Any, bool]], timeout: float = 10.0, what: str = "") -> None:
    """Poll an RPC with a deadline (only where the controller offers no event to wait on)."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def state(s: controller_pb2_grpc.ControllerStub, task_id: str) -> int:
    return (await s.GetTask(pb.GetTaskRequest(task_id=task_id), timeout=10)).state
