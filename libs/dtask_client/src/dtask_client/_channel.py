"""The gRPC channel a client talks over: given ready, made by a factory, or the default mutual-TLS one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias

import grpc
from dtask_common.server import client_options
from dtask_common.tls import channel_credentials
from grpc import aio

from dtask_client._calls import Rpc
from dtask_client._settings import Settings

#: What Controller(channel=...) takes: a ready grpc.Channel (the caller's to close) or a factory of one.
ChannelSource: TypeAlias = grpc.Channel | Callable[[], grpc.Channel]
#: What AsyncController(channel=...) takes: a ready grpc.aio.Channel or a factory called in the running loop.
AsyncChannelSource: TypeAlias = aio.Channel | Callable[[], aio.Channel]


class Methods:
    """The controller's methods on one channel, made from the Rpc descriptors once each."""

    def __init__(self, channel: Any, owned: bool):
        self.channel = channel
        #: True when the client made the channel (and closes it); False for a channel given ready.
        self.owned = owned
        self._made: dict[str, Any] = {}

    def __getitem__(self, rpc: Rpc) -> Any:
        method = self._made.get(rpc.name)
        if method is None:
            method = self._made[rpc.name] = rpc.method(self.channel)
        return method


def _credentials(settings: Settings) -> grpc.ChannelCredentials:
    assert settings.files is not None, "the certificate files are read unless a channel is given"
    return channel_credentials(settings.files)


def sync_methods(settings: Settings, source: ChannelSource | None) -> Methods:
    if source is None:
        return Methods(grpc.secure_channel(settings.address, _credentials(settings), options=client_options()), True)
    if callable(source):
        return Methods(source(), True)
    return Methods(source, False)


def async_methods(settings: Settings, source: AsyncChannelSource | None) -> Methods:
    """Call inside the running event loop (a grpc.aio channel belongs to the loop it was made in)."""
    if source is None:
        return Methods(aio.secure_channel(settings.address, _credentials(settings), options=client_options()), True)
    if callable(source):
        return Methods(source(), True)
    return Methods(source, False)
