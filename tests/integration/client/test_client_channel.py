"""Controller(channel=...) and AsyncController(channel=...) talk over a channel the caller made."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import grpc
from dtask_client import AsyncController, Controller
from dtask_common.server import client_options
from dtask_common.tls import TlsFiles, channel_credentials
from grpc import aio

from tests.integration.client.cluster import Cluster


class Recorder(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    """Notes the method of every call that goes through the channel."""

    def __init__(self) -> None:
        self.methods: list[str] = []

    def intercept_unary_unary(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        self.methods.append(details.method)
        return continuation(details, request)

    def intercept_unary_stream(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        self.methods.append(details.method)
        return continuation(details, request)


class AsyncRecorder(aio.UnaryUnaryClientInterceptor):
    def __init__(self) -> None:
        self.methods: list[str] = []

    async def intercept_unary_unary(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        method = details.method  # bytes in grpc.aio
        self.methods.append(method.decode() if isinstance(method, bytes) else method)
        return await continuation(details, request)


def test_a_ready_channel_is_used_and_left_open(live: Cluster) -> None:
    creds = channel_credentials(TlsFiles.in_dir(live.certs, "operator"))
    recorder = Recorder()
    channel = grpc.intercept_channel(grpc.secure_channel(live.address, creds, options=client_options()), recorder)
    with Controller(live.address, channel=channel) as c:
        assert c.whoami().role == "operator"
        assert "r1" in {e.name for e in c.executors()}
    assert recorder.methods == ["/dtask.v1.Controller/WhoAmI", "/dtask.v1.Controller/ListExecutors"]
    with Controller(live.address, channel=channel) as again:  # close() left it open: it is the caller's
        assert again.finished() in (True, False)
    channel.close()


def test_an_async_channel_factory_is_called_in_the_loop(live: Cluster) -> None:
    creds = channel_credentials(TlsFiles.in_dir(live.certs, "operator"))
    recorder = AsyncRecorder()

    async def scenario() -> None:
        def factory() -> aio.Channel:
            asyncio.get_running_loop()  # a grpc.aio channel belongs to the running loop
            return aio.secure_channel(live.address, creds, options=client_options(), interceptors=[recorder])

        async with AsyncController(live.address, channel=factory) as c:
            assert (await c.whoami()).role == "operator"
            assert isinstance(await c.tasks(), list)

    asyncio.run(scenario())
    assert recorder.methods == ["/dtask.v1.Controller/WhoAmI", "/dtask.v1.Controller/ListTasks"]
