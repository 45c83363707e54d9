"""The synchronous client's connection: its channel, unary calls sent again while the controller is away,
streams, and waiting for a controller that went away to come back."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar, assert_never

import grpc
from dtask_common.config import Config

from dtask_client import _calls as c
from dtask_client._channel import ChannelSource, sync_methods
from dtask_client._retry import GiveUp, Probe, Reconnect, Resend, RetryPolicy
from dtask_client._settings import resolve
from dtask_client.errors import ControllerUnavailable, DtaskError, from_rpc_error

T = TypeVar("T")


class SyncConnection:
    """The channel to a controller and how calls go over it (the public methods are Controller's)."""

    def __init__(
        self,
        address: str | None = None,
        *,
        certs: str | Path | None = None,
        cert: str | Path | None = None,
        key: str | Path | None = None,
        timeout: float | None = None,
        config: Config | None = None,
        channel: ChannelSource | None = None,
    ):
        self._settings = resolve(
            address, certs=certs, cert=cert, key=key, timeout=timeout, config=config, need_files=channel is None
        )
        self._methods = sync_methods(self._settings, channel)
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

    def _call(self, call: c.Call[T], timeout: float | None = None) -> T:
        """Send a unary call, again while the controller is away if that is safe (within the timeout)."""
        budget = timeout or self._settings.timeout
        retries = self._retries.start(call.rpc, self._connected, time.monotonic(), budget)
        send_timeout, wait_for_ready = budget, False
        while True:
            try:
                return self._send(call, send_timeout, wait_for_ready)
            except DtaskError as exc:
                verdict = retries.failed(exc, time.monotonic())
            match verdict:
                case Resend(delay, resend_timeout):
                    time.sleep(delay)
                    send_timeout, wait_for_ready = resend_timeout, True
                case GiveUp(error):
                    raise error from None
                case _:
                    assert_never(verdict)

    def _send(self, call: c.Call[T], timeout: float, wait_for_ready: bool = False) -> T:
        try:
            reply = self._methods[call.rpc](call.request, timeout=timeout, wait_for_ready=wait_for_ready)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc, self.address, call.rpc.name, self._settings.ranges) from None
        self._connected = True
        return call.convert(reply)

    def _stream(self, call: c.StreamCall[T], timeout: float | None = None, quiet_deadline: bool = False) -> Iterator[T]:
        stream = self._methods[call.rpc](call.request, timeout=timeout)
        try:
            for msg in stream:
                self._connected = True
                yield call.convert(msg)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.CANCELLED and stream.cancelled():  # type: ignore[attr-defined]
                return
            if quiet_deadline and exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:  # type: ignore[attr-defined]
                return
            raise from_rpc_error(exc, self.address, call.rpc.name, self._settings.ranges) from None
        finally:
            stream.cancel()

    def _reconnect(self, waiting: Reconnect) -> None:
        """Block until the controller answers again (it keeps everything across a restart)."""
        if self.on_reconnect is not None:
            self.on_reconnect(waiting.lost.message)
        while True:
            step = waiting.step(time.monotonic())
            match step:
                case GiveUp(error):
                    raise error
                case Probe(ready_timeout, call_timeout):
                    try:
                        grpc.channel_ready_future(self._methods.channel).result(timeout=ready_timeout)
                        self._send(c.finished(), call_timeout)
                        return
                    except grpc.FutureTimeoutError:
                        raise waiting.lost from None
                    except ControllerUnavailable:
                        time.sleep(waiting.pause)  # answered the connect but not the call (still starting)
                case _:
                    assert_never(step)

    def close(self) -> None:
        if self._methods.owned:
            self._methods.channel.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        files = self._settings.files
        shown = f", cert={str(files.cert)!r}" if files else ""
        return f"{type(self).__name__}({self.address!r}{shown})"
