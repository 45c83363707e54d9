"""Garbage to every RPC of every service over real mTLS: the answer is always a status a client can act on."""

from __future__ import annotations

import math
import random
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from dtask.v1 import common_pb2 as cpb
from dtask.v1 import controller_pb2, runner_pb2
from dtask_common.models import TaskSpec
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2

from tests.integration.client.cluster import Cluster, cluster
from tests.support import sync_channel, tls

# What a client can act on. UNKNOWN, INTERNAL, UNAVAILABLE, DEADLINE_EXCEEDED and the rest are bugs here.
ACCEPTABLE = {
    grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.OUT_OF_RANGE, grpc.StatusCode.ABORTED, grpc.StatusCode.UNIMPLEMENTED,
}
BAD_UTF8 = b"\xff\xfe\xc3("
STRINGS: list[bytes] = [
    b"", b"1", b"010", b"0", b"-1", b"+1", b" 1", b"1 ", b"99999999999999999999999", b"9223372036854775808",
    "\u00b2".encode(), "\u0661".encode(), b"after:99999999999999999999999", b"after:-1", b"\x00", BAD_UTF8,
    b"x" * 70_000,
]
INTS = [-1, -(2**31), 2**31 - 1, 2**63 - 1, -(2**63), 2**64 - 1]
DOUBLES = [math.inf, -math.inf, math.nan, -1.0, 1e308, -0.0]
SERVICES = {  # service -> where it is served: the controller, the runner, or both
    **{s.full_name: ("controller",) for s in controller_pb2.DESCRIPTOR.services_by_name.values()},
    **{s.full_name: ("runner",) for s in runner_pb2.DESCRIPTOR.services_by_name.values()},
    **{s.full_name: ("controller", "runner") for s in health_pb2.DESCRIPTOR.services_by_name.values()},
    **{s.full_name: ("controller", "runner") for s in reflection_pb2.DESCRIPTOR.services_by_name.values()},
}
# A valid base for nested messages, so one bad field is all that is wrong with them.
BASES = {"dtask.v1.TaskSpec": cpb.TaskSpec(shell="true").SerializeToString()}


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _tag(number: int, wire: int) -> bytes:
    return _varint(number << 3 | wire)


def _len(number: int, data: bytes) -> bytes:
    return _tag(number, 2) + _varint(len(data)) + data


def _values(f: FieldDescriptor, depth: int) -> Iterator[tuple[str, bytes]]:
    """(description, encoded field) for hostile values of one field."""
    n, t = f.number, f.type
    if t in (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES):
        for s in STRINGS:
            yield f"{s[:30]!r}", _len(n, s)
    elif t == FieldDescriptor.TYPE_DOUBLE:
        for d in DOUBLES:
            yield repr(d), _tag(n, 1) + struct.pack("<d", d)
    elif t == FieldDescriptor.TYPE_FLOAT:
        for d in DOUBLES:
            yield repr(d), _tag(n, 5) + struct.pack("<f", d if abs(d) < 1e38 or math.isinf(d) else math.inf)
    elif t == FieldDescriptor.TYPE_MESSAGE:
        if depth < 3:
            base = BASES.get(f.message_type.full_name, b"")
            for what, inner in _variants(f.message_type, depth + 1):
                yield what, _len(n, base + inner)
    elif t == FieldDescriptor.TYPE_BOOL:
        yield "2", _tag(n, 0) + _varint(2)
    else:  # integers and enums
        for i in INTS:
            yield str(i), _tag(n, 0) + _varint(i)


def _variants(d: Descriptor, depth: int = 0) -> Iterator[tuple[str, bytes]]:
    """Messages of type d with one hostile field each."""
    for f in d.fields:
        for what, data in _values(f, depth):
            yield f"{f.name}={what}", data


def payloads(m: MethodDescriptor) -> Iterator[tuple[str, bytes]]:
    rnd = random.Random(m.full_name)
    yield "empty", b""
    for size in (1, 7, 64, 1000):
        yield f"random {size} bytes", rnd.randbytes(size)
    yield "truncated length", _tag(1, 2) + _varint(1000) + b"abc"
    yield "bad wire type", _tag(1, 7)
    yield "field 0", b"\x00\x01"
    yield from _variants(m.input_type)


@dataclass
class Answer:
    code: grpc.StatusCode
    details: str


def call(channel: grpc.Channel, m: MethodDescriptor, raw: bytes) -> Answer:
    path = f"/{m.containing_service.full_name}/{m.name}"
    try:
        if not m.client_streaming and not m.server_streaming:
            channel.unary_unary(path)(raw, timeout=20)
            return Answer(grpc.StatusCode.OK, "")
        if m.client_streaming:
            stream = channel.stream_stream(path)(iter([raw]), timeout=20)
        else:
            stream = channel.unary_stream(path)(raw, timeout=20)
        try:
            next(stream, None)  # a first message, or the end: the call is being served
        finally:
            stream.cancel()
        return Answer(grpc.StatusCode.OK, "")
    except grpc.RpcError as exc:
        return Answer(exc.code(), exc.details() or "")  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, certs_template: Path) -> Iterator[Cluster]:
    with cluster(tmp_path_factory.mktemp("hostile"), certs_template, runners=("r1",)) as c:
        with c.client() as client:
            [tid] = client.submit([TaskSpec(name="seed", shell="true")])
            client.wait([tid], timeout=30)
        yield c


def methods() -> Iterator[tuple[str, MethodDescriptor]]:
    for module in (controller_pb2, runner_pb2, health_pb2, reflection_pb2):
        for service in module.DESCRIPTOR.services_by_name.values():
            for m in service.methods:
                for where in SERVICES[service.full_name]:
                    yield where, m


@pytest.mark.timeout(300)
@pytest.mark.parametrize(("where", "method"), list(methods()), ids=lambda x: getattr(x, "full_name", x))
def test_garbage_gets_a_status_a_client_can_act_on(live: Cluster, where: str, method: MethodDescriptor) -> None:
    address = live.address if where == "controller" else live.runners[0].address
    stems = ["operator", "runner-r2"] if method.full_name == "dtask.v1.Controller.Connect" else ["operator"]
    bad: list[str] = []
    sent = 0
    for stem in stems:
        with sync_channel(address, tls(live.certs, stem)) as ch:
            for what, raw in payloads(method):
                answer = call(ch, method, raw)
                sent += 1
                if answer.code not in ACCEPTABLE or "Stream removed" in answer.details or len(answer.details) > 1100:
                    bad.append(f"{stem} {what}: {answer.code.name} ({len(answer.details)} characters) "
                               f"{answer.details[:200]}")
    assert sent > 5
    assert not bad, f"{len(bad)} of {sent} hostile requests to {method.full_name} got:\n" + "\n".join(bad[:30])


def test_runner_session_garbage_after_hello_is_invalid_argument(live: Cluster) -> None:
    import queue

    from dtask_common import PROTOCOL_VERSION

    up: queue.Queue[bytes | None] = queue.Queue()
    hello = controller_pb2.RunnerMessage(hello=controller_pb2.Hello(protocol_version=PROTOCOL_VERSION))
    up.put(hello.SerializeToString())
    with sync_channel(live.address, tls(live.certs, "runner-r2")) as ch:
        stream = ch.stream_stream("/dtask.v1.Controller/Connect")(iter(up.get, None), timeout=20)
        welcome = controller_pb2.ControllerMessage.FromString(next(stream))
        assert welcome.WhichOneof("msg") == "welcome"
        up.put(_len(4, _len(1, BAD_UTF8)))  # an OutputChunk whose task_id is not UTF-8
        with pytest.raises(grpc.RpcError) as exc:
            for _ in stream:
                pass
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT, exc.value.details()
    assert "UTF-8" in (exc.value.details() or "")


def test_the_servers_logged_no_traceback(live: Cluster) -> None:
    """Runs after the garbage: nothing reached a handler's unexpected-error path or grpc's own."""
    for proc in (live.controller, *live.runners):
        text = "".join(proc.lines)
        assert "Traceback" not in text and "Unexpected" not in text, text[-3000:]
