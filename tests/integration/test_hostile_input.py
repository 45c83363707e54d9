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
from dtask.v1 import controller_pb2, controller_pb2_grpc, runner_pb2
from dtask_client import InvalidTask
from dtask_common.models import TaskSpec
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2

from tests.integration.client.cluster import Cluster, cluster
from tests.support import sync_channel, tls

# What a client can act on. UNKNOWN, INTERNAL, UNAVAILABLE, DEADLINE_EXCEEDED and the rest are bugs here.
ACCEPTABLE = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.OUT_OF_RANGE,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.UNIMPLEMENTED,
}
BAD_UTF8 = b"\xff\xfe\xc3("
STRINGS: list[bytes] = [
    b"",
    b"1",
    b"010",
    b"0",
    b"-1",
    b"+1",
    b" 1",
    b"1 ",
    b"99999999999999999999999",
    b"9223372036854775808",
    "\u00b2".encode(),
    "\u0661".encode(),
    b"after:99999999999999999999999",
    b"after:-1",
    b"\x00",
    BAD_UTF8,
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
                    bad.append(
                        f"{stem} {what}: {answer.code.name} ({len(answer.details)} characters) {answer.details[:200]}"
                    )
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


def _status(fn: object, request: object) -> tuple[grpc.StatusCode, str, dict[str, bytes]]:
    try:
        result = fn(request, timeout=20)  # type: ignore[operator]
        if hasattr(result, "__next__"):
            next(result, None)
        return grpc.StatusCode.OK, "", {}
    except grpc.RpcError as exc:
        return exc.code(), exc.details() or "", dict(exc.trailing_metadata() or ())  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("010", "write it without leading zeros (10)"),
        ("99999999999999999999999", "larger than the largest"),
        ("-1", "without a sign"),
        ("", "it is empty"),
        (" 1", "remove the spaces"),
        ("\u0661", "decimal numbers"),
    ],
)
@pytest.mark.parametrize("rpc", ["GetTask", "CancelTask", "RetryTask", "GetTaskOutput"])
def test_ids_that_are_not_canonical_are_invalid_argument(live: Cluster, rpc: str, text: str, why: str) -> None:
    request = getattr(controller_pb2, f"{rpc}Request")(task_id=text)
    with sync_channel(live.address, tls(live.certs, "operator")) as ch:
        code, details, _ = _status(getattr(controller_pb2_grpc.ControllerStub(ch), rpc), request)
    assert code == grpc.StatusCode.INVALID_ARGUMENT, details
    assert details.startswith(f"task_id {text!r} is not a task id: ") and why in details


def test_a_canonical_id_of_no_task_is_not_found(live: Cluster) -> None:
    with sync_channel(live.address, tls(live.certs, "operator")) as ch:
        stub = controller_pb2_grpc.ControllerStub(ch)
        for rpc in ("GetTask", "CancelTask", "RetryTask", "GetTaskOutput"):
            request = getattr(controller_pb2, f"{rpc}Request")(task_id="9223372036854775807")
            assert _status(getattr(stub, rpc), request)[0] == grpc.StatusCode.NOT_FOUND, rpc


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"\xff\xff\xff", "is not a valid protobuf message: Wire format was corrupt"),
        (_len(1, BAD_UTF8), "UTF-8"),
    ],
)
def test_bytes_that_are_not_the_request_are_invalid_argument(live: Cluster, raw: bytes, why: str) -> None:
    with sync_channel(live.address, tls(live.certs, "viewer")) as ch:
        code, details, _ = _status(ch.unary_unary("/dtask.v1.Controller/GetTask"), raw)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and why in details
    assert details.startswith("the GetTask request is not a valid protobuf message")


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (cpb.TaskSpec(shell="true", timeout_s=math.inf), "timeout_s"),
        (cpb.TaskSpec(shell="true", timeout_s=math.nan), "timeout_s"),
        (cpb.TaskSpec(shell="true", timeout_s=-1), "timeout_s"),
        (cpb.TaskSpec(shell="true", resources=cpb.Resources(cpus=math.inf)), "resources.cpus"),
        (cpb.TaskSpec(shell="true", resources=cpb.Resources(cpus=-math.nan)), "resources.cpus"),
        (cpb.TaskSpec(shell="true", resources=cpb.Resources(memory_mb=-1)), "resources.memory_mb"),
        (cpb.TaskSpec(shell="true", depends_on=["010"]), "depends_on[0]"),
        (cpb.TaskSpec(shell="true", depends_on=["99999999999999999999999"]), "depends_on[0]"),
    ],
)
def test_numbers_and_ids_in_a_submission_are_field_errors(live: Cluster, spec: cpb.TaskSpec, field: str) -> None:
    with sync_channel(live.address, tls(live.certs, "operator")) as ch:
        code, details, trailer = _status(
            controller_pb2_grpc.ControllerStub(ch).SubmitTasks, controller_pb2.SubmitTasksRequest(tasks=[spec])
        )
    assert code == grpc.StatusCode.INVALID_ARGUMENT, details
    errors = controller_pb2.TaskErrors.FromString(trailer["dtask-task-errors-bin"])
    assert [e.field for e in errors.errors] == [field] and errors.omitted == 0
    if spec.depends_on == ["010"]:
        assert "without leading zeros (10)" in errors.errors[0].message


def test_300_invalid_tasks_give_the_first_errors_and_the_count(live: Cluster) -> None:
    specs = [TaskSpec(name=f"t{i}-" + "x" * 200, shell="true", depends_on=("999999999",)) for i in range(300)]
    with live.client() as c, pytest.raises(InvalidTask) as info:
        c.submit(specs)
    err = info.value
    assert err.code == "INVALID_ARGUMENT" and err.message.startswith("300 of 300 tasks are invalid")
    assert 5 <= len(err.errors) < 300 and len(err.errors) + err.omitted == 300
    assert [e.index for e in err.errors] == list(range(len(err.errors)))
    assert all(e.field == "depends_on[0]" for e in err.errors)


def test_the_servers_logged_no_traceback(live: Cluster) -> None:
    """Runs after the garbage: nothing reached a handler's unexpected-error path or grpc's own."""
    for proc in (live.controller, *live.runners):
        text = "".join(proc.lines)
        assert "Traceback" not in text and "Unexpected" not in text, text[-3000:]
