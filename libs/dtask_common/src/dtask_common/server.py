"""Building a dtask gRPC server: mTLS, role checks, keepalive, health, reflection, port range."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from importlib import resources

import grpc
from grpc import aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc
from grpc_reflection.v1alpha._async import ReflectionServicer

from dtask_common.authz import RoleInterceptor
from dtask_common.guard import GuardInterceptor
from dtask_common.revocation import Revocations
from dtask_common.roles import Role

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 16 * 1024 * 1024
STREAM_WINDOW_BYTES = 4 * 1024 * 1024

# Server keepalive policy; client_options() must stay within it.
SERVER_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.so_reuseport", 0),
    # A fixed 4 MiB stream window and frame size (what bandwidth probing announces anyway), without the probing:
    # it pings the peer for about every message of a sparse stream and adds window updates, which for a fleet's
    # usage reports at 1 Hz cost more than the reports (tests/integration/test_transport.py).
    ("grpc.http2.bdp_probe", 0),
    ("grpc.http2.lookahead_bytes", STREAM_WINDOW_BYTES),
    ("grpc.http2.max_frame_size", STREAM_WINDOW_BYTES),
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    # grpcio >= 1.5x waits ping_timeout (default 60 s), not keepalive_timeout, for a keepalive ack.
    ("grpc.http2.ping_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
)


def client_options() -> list[tuple[str, int | str]]:
    """Channel options matching SERVER_OPTIONS' keepalive policy.

    A peer that stops answering (a blackholed or half-open connection) is noticed within
    keepalive_time + ping_timeout = 11 s; pings stay further apart than the server's 5 s minimum.
    """
    return [
        ("grpc.keepalive_time_ms", 6_000),
        ("grpc.keepalive_timeout_ms", 5_000),
        ("grpc.http2.ping_timeout_ms", 5_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ]


class PortRangeFull(RuntimeError):
    """No port of the configured range could be bound."""


def new_server(policy: Mapping[str, frozenset[Role]], revocations: Revocations | None = None) -> aio.Server:
    """An asyncio gRPC server that checks roles (and revoked certificates) on every call and never answers UNKNOWN."""
    return aio.server(
        interceptors=[RoleInterceptor(policy, revocations), GuardInterceptor()], options=list(SERVER_OPTIONS)
    )


async def add_health_and_reflection(server: aio.Server, service_names: Iterable[str]) -> health_aio.HealthServicer:
    """Serve grpc.health.v1 and server reflection; every named service is SERVING."""
    names = list(service_names)
    servicer = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    for name in ["", *names]:
        await servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(
        DocumentedReflection([*names, health.SERVICE_NAME, reflection.SERVICE_NAME]), server
    )
    return servicer


def _documented_files() -> dict[str, bytes]:
    """dtask's FileDescriptorProtos with source comments, from descriptors.binpb (made by make proto)."""
    from google.protobuf import descriptor_pb2

    data = resources.files("dtask.v1").joinpath("descriptors.binpb").read_bytes()
    files = descriptor_pb2.FileDescriptorSet.FromString(data).file
    return {f.name: f.SerializeToString() for f in files}


class DocumentedReflection(ReflectionServicer):
    """Server reflection that serves dtask's descriptors with their comments, so `grpcurl describe` shows them."""

    def __init__(self, service_names: list[str]):
        super().__init__(service_names)
        self._documented = _documented_files()

    def _swap(self, response: reflection_pb2.ServerReflectionResponse) -> reflection_pb2.ServerReflectionResponse:
        from google.protobuf import descriptor_pb2

        if response.HasField("file_descriptor_response"):
            protos = response.file_descriptor_response.file_descriptor_proto
            for i, raw in enumerate(protos):
                name = descriptor_pb2.FileDescriptorProto.FromString(raw).name
                if name in self._documented:
                    protos[i] = self._documented[name]
        return response

    def _file_by_filename(self, request, filename):  # type: ignore[no-untyped-def]
        return self._swap(super()._file_by_filename(request, filename))

    def _file_containing_symbol(self, request, fully_qualified_name):  # type: ignore[no-untyped-def]
        response = super()._file_containing_symbol(request, fully_qualified_name)
        if response.HasField("error_response") and "." in fully_qualified_name:
            # The descriptor pool does not index methods: look up the service that holds it.
            parent = fully_qualified_name.rsplit(".", 1)[0]
            response = super()._file_containing_symbol(request, parent)
        return self._swap(response)


def bind_in_range(
    server: aio.Server, host: str, port_range: tuple[int, int], credentials: grpc.ServerCredentials
) -> int:
    """Bind the first free port of port_range on host; return it or raise PortRangeFull."""
    first, last = port_range
    for port in range(first, last + 1):
        try:
            bound = server.add_secure_port(f"{_host(host)}:{port}", credentials)
        except RuntimeError:
            bound = 0
        if bound:
            return bound
        log.debug("port %s:%d is taken, trying the next", host, port)
    raise PortRangeFull(
        f"no free port in {first}-{last} on {host}: every port of the range is taken; "
        f"stop what uses them or set another port_range"
    )


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
