"""The asyncio client's connection: its channel (opened in the running loop), unary calls sent again while the
controller is away, streams, and waiting for a controller that went away to come back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar, assert_never

import grpc
from dtask_common.config import Config

from dtask_client import _calls as c
from dtask_client._channel import AsyncChannelSource, Methods, async_methods
from dtask_client._retry import GiveUp, Probe, Reconnect, Resend, RetryPolicy
from dtask_client._settings import resolve
from dtask_client.errors import ControllerUnavailable, DtaskError, from_rpc_error

T = TypeVar("T")


class AsyncConnection:
    """The channel to a controller and how calls go over it (the public methods are AsyncController's)."""

    def __init__(
        self,
        address: str | None = None,
        *,
        certs: str | Path | None = None,
        cert: str | Path | None = None,
        key: str | Path | None = None,
        timeout: float | None = None,
        config: Config | None = None,
        channel: AsyncChannelSource | None = None,
    ):
        self._settings = resolve(
            address, certs=certs, cert=cert, key=key, timeout=timeout, config=config, need_files=channel is None
        )
        self._source = channel
        self._methods: Methods | None = None
        self._retries = RetryPolicy()
        self._connected = False
        #: Called with the reason when wait() or logs(follow=True) lost the controller and wait for it to return.
        self.on_reconnect: Callable[[str], None] | None = None

    @property
    def address(self) -> str:
        return self._settings.address

    @property
    def timeout(self) -> float:
        return self._settings.timeout

    def _get_methods(self) -> Methods:
        if self._methods is None:
            self._methods = async_methods(self._settings, self._source)
        return self._methods

    async def _call(self, call: c.Call[T], timeout: float | None = None) -> T:
        """Send a unary call, again while the controller is away if that is safe (within the timeout)."""
        budget = timeout or self.timeout
        retries = self._retries.start(call.rpc, self._connected, time.monotonic(), budget)
        send_timeout, wait_for_ready = budget, False
        while True:
            try:
                return await self._send(call, send_timeout, wait_for_ready)
            except DtaskError as exc:
                verdict = retries.failed(exc, time.monotonic())
            match verdict:
                case Resend(delay, resend_timeout):
                    await asyncio.sleep(delay)
                    send_timeout, wait_for_ready = resend_timeout, True
                case GiveUp(error):
                    raise error from None
                case _:
                    assert_never(verdict)

    async def _send(self, call: c.Call[T], timeout: float, wait_for_ready: bool = False) -> T:
        try:
            reply = await self._get_methods()[call.rpc](call.request, timeout=timeout, wait_for_ready=wait_for_ready)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc, self.address, call.rpc.name, self._settings.ranges) from None
        self._connected = True
        return call.convert(reply)

    async def _stream(
        self, call: c.StreamCall[T], timeout: float | None = None, quiet_deadline: bool = False
    ) -> AsyncIterator[T]:
        stream = self._get_methods()[call.rpc](call.request, timeout=timeout)
        try:
            async for msg in stream:
                self._connected = True
                yield call.convert(msg)
        except asyncio.CancelledError:
            raise
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.CANCELLED and stream.cancelled():  # type: ignore[attr-defined]
                return
            if quiet_deadline and exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:  # type: ignore[attr-defined]
                return
            raise from_rpc_error(exc, self.address, call.rpc.name, self._settings.ranges) from None
        finally:
            stream.cancel()

    async def _reconnect(self, waiting: Reconnect) -> None:
        """Wait until the controller answers again (it keeps everything across a restart)."""
        if self.on_reconnect is not None:
            self.on_reconnect(waiting.lost.message)
        while True:
            step = waiting.step(time.monotonic())
            match step:
                case GiveUp(error):
                    raise error
                case Probe(ready_timeout, call_timeout):
                    try:
                        await asyncio.wait_for(self._get_methods().channel.channel_ready(), ready_timeout)
                        await self._send(c.finished(), call_timeout)
                        return
                    except TimeoutError:
                        raise waiting.lost from None
                    except ControllerUnavailable:
                        await asyncio.sleep(waiting.pause)  # answered the connect but not the call (still starting)
                case _:
                    assert_never(step)

    async def close(self) -> None:
        methods, self._methods = self._methods, None
        if methods is not None and methods.owned:
            await methods.channel.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        files = self._settings.files
        shown = f", cert={str(files.cert)!r}" if files else ""
        return f"{type(self).__name__}({self.address!r}{shown})"
