"""The asyncio client: `AsyncController`, the same API as Controller with coroutines and async iterators."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import grpc
from dtask.v1 import controller_pb2_grpc
from dtask_common import events as ev
from dtask_common.config import Config
from dtask_common.models import (
    FINISHED_STATES,
    ExecutorInfo,
    ExecutorUsage,
    Identity,
    QueueStatus,
    Task,
    TaskSpec,
    TaskState,
)
from dtask_common.server import client_options
from dtask_common.tls import channel_credentials
from grpc import aio

from dtask_client import _connection as c
from dtask_client.errors import Conflict, ControllerUnavailable, WaitTimeout, from_rpc_error

T = TypeVar("T")


class AsyncController:
    """The asyncio twin of Controller: same constructor and defaults, methods are coroutines.

    logs() and watch() are async iterators. The channel is opened on first use inside the
    running event loop; `async with AsyncController(...) as c:` closes it.
    """

    def __init__(self, address: str | None = None, *, certs: str | Path | None = None,
                 cert: str | Path | None = None, key: str | Path | None = None,
                 timeout: float | None = None, config: Config | None = None):
        self._settings = c.resolve(address, certs=certs, cert=cert, key=key, timeout=timeout, config=config)
        self._channel: aio.Channel | None = None
        self._stub: Any = None

    # ---- plumbing ----

    @property
    def address(self) -> str:
        return self._settings.address

    @property
    def timeout(self) -> float:
        return self._settings.timeout

    def _get_stub(self) -> Any:
        if self._stub is None:
            self._channel = aio.secure_channel(
                self._settings.address, channel_credentials(self._settings.files), options=client_options())
            self._stub = controller_pb2_grpc.ControllerStub(self._channel)
        return self._stub

    async def _call(self, call: c.Call[T], timeout: float | None = None) -> T:
        try:
            reply = await getattr(self._get_stub(), call.method)(call.request, timeout=timeout or self.timeout)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc, self.address, call.method) from None
        return call.convert(reply)

    async def _stream(self, method: str, request: Any, convert: Callable[[Any], T],
                      timeout: float | None = None, quiet_deadline: bool = False) -> AsyncIterator[T]:
        call = getattr(self._get_stub(), method)(request, timeout=timeout)
        try:
            async for msg in call:
                yield convert(msg)
        except asyncio.CancelledError:
            raise
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.CANCELLED and call.cancelled():  # type: ignore[attr-defined]
                return
            if quiet_deadline and exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:  # type: ignore[attr-defined]
                return
            raise from_rpc_error(exc, self.address, method) from None
        finally:
            call.cancel()

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None
            self._stub = None

    async def __aenter__(self) -> AsyncController:
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"AsyncController({self.address!r}, cert={str(self._settings.files.cert)!r})"

    # ---- queries ----

    async def whoami(self) -> Identity:
        return await self._call(c.whoami())

    async def executors(self, include_gone: bool = False) -> list[ExecutorInfo]:
        return await self._call(c.executors(include_gone))

    async def executor(self, name: str) -> ExecutorInfo:
        return await self._call(c.executor(name))

    async def finished(self) -> bool:
        return await self._call(c.finished())

    async def queue(self) -> QueueStatus:
        return await self._call(c.queue())

    async def resource_usage(self, executor: str | None = None, history: int = 60) -> list[ExecutorUsage]:
        return await self._call(c.resource_usage(executor, history))

    async def tasks(self, states: Iterable[TaskState | str] | None = None, tag: str | None = None,
                    executor: str | None = None, name_contains: str | None = None) -> list[Task]:
        wanted = c.states_of(states)
        out: list[Task] = []
        token = ""
        while True:
            page, token = await self._call(c.list_tasks(wanted, tag, executor, name_contains, token))
            out.extend(page)
            if not token:
                return out

    async def tasks_pending(self) -> list[Task]:
        return await self.tasks([TaskState.PENDING])

    async def tasks_running(self) -> list[Task]:
        return await self.tasks([TaskState.RUNNING])

    async def tasks_finished(self) -> list[Task]:
        return await self.tasks(FINISHED_STATES)

    async def task(self, task_id: str) -> Task:
        return await self._call(c.task(task_id))

    # ---- commands ----

    async def submit(self, specs: TaskSpec | Iterable[TaskSpec] | str | Path) -> list[str]:
        return await self._call(c.submit(c.specs_of(specs)))

    async def add_task(self, spec: TaskSpec | str | list[str] | None = None, /, **fields: Any) -> str:
        return (await self.submit(c.spec_from_fields(spec, fields)))[0]

    async def add_tasks(self, specs: Iterable[TaskSpec | dict[str, Any]] | str | Path) -> list[str]:
        if isinstance(specs, (str, Path)):
            return await self.submit(specs)
        return await self.submit([s if isinstance(s, TaskSpec) else c.spec_from_fields(None, s) for s in specs])

    async def cancel(self, task_id: str) -> Task:
        return await self._call(c.cancel(task_id))

    async def retry(self, task_id: str) -> Task:
        return await self._call(c.retry(task_id))

    async def drain(self, name: str, undrain: bool = False) -> ExecutorInfo:
        return await self._call(c.drain(name, undrain))

    async def pause(self) -> QueueStatus:
        return await self._call(c.pause())

    async def resume(self) -> QueueStatus:
        return await self._call(c.resume())

    # ---- streams ----

    async def logs(self, task_id: str, attempt: int = 0, follow: bool = False) -> AsyncIterator[bytes]:
        if not follow:
            await self.task(task_id)
        while True:
            started = False
            try:
                async for data in self._stream("GetTaskOutput", c.output_request(task_id, attempt, follow),
                                               c.output_data):
                    started = True
                    yield data
                return
            except Conflict:
                if not follow or started or (await self.task(task_id)).state is not TaskState.PENDING:
                    raise
            async for event in self.watch(include_usage=False, include_progress=False):
                if c.dispatched(event, task_id):
                    break

    async def watch(self, include_usage: bool = True, include_progress: bool = True,
                    timeout: float | None = None) -> AsyncIterator[ev.WatchEvent]:
        async for event in self._stream("Watch", c.watch_request(include_usage, include_progress), c.event_of,
                                        timeout, quiet_deadline=True):
            yield event

    async def wait(self, ids: Iterable[str] | None = None, timeout: float | None = None,
                   on_change: Callable[[list[Task]], None] | None = None) -> list[Task]:
        wanted = [str(i) for i in ids] if ids is not None else None
        state = c.WaitState(wanted)

        async def run() -> list[Task]:
            events = self._stream("Watch", c.watch_request(False, on_change is not None), c.event_of)
            try:
                async for event in events:
                    state.apply(event)
                    state.check()
                    if on_change is not None and state.ready:
                        on_change(state.watched())
                    if state.done():
                        return state.watched()
            finally:
                await events.aclose()  # type: ignore[attr-defined]
            raise ControllerUnavailable(
                f"the controller at {self.address} ended the watch stream before the tasks finished")

        try:
            return await asyncio.wait_for(run(), timeout)
        except TimeoutError:
            raise WaitTimeout(f"tasks still unfinished after {timeout:g} s", "DEADLINE_EXCEEDED") from None
        except ControllerUnavailable:
            raise
