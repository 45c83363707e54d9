"""Controller.Connect: one runner session stream (Hello checks, then commands down and reports up)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any, Literal, assert_never, cast, get_args

import grpc
from dtask.v1 import controller_pb2 as pb
from dtask_common import PROTOCOL_VERSION, __version__, convert
from dtask_common.authz import peer_identity

from dtask_controller import reports
from dtask_controller.core import ControllerCore
from dtask_controller.ownership import ReportGuard
from dtask_controller.queries import CoreOwners
from dtask_controller.runner_messages import AckCmd, AssignCmd, CancelCmd, Command, Hello, Session

log = logging.getLogger(__name__)
HELLO_TIMEOUT_S = 30.0
# Every kind of RunnerMessage (the fields of its `msg` oneof).
MessageKind = Literal["hello", "usage", "progress", "output", "finished", "drain", "refused"]
MESSAGE_KINDS: frozenset[str] = frozenset(get_args(MessageKind))


def message_kind(msg: pb.RunnerMessage) -> MessageKind | None:
    """Which message it is; None when it holds none this controller knows (sent by a newer runner?)."""
    kind = msg.WhichOneof("msg")
    return cast(MessageKind, kind) if kind in MESSAGE_KINDS else None


def hello_from_pb(h: pb.Hello, name: str) -> Hello:
    return Hello(
        name=name,
        address=h.runner_address,
        capacity=convert.capacity_from_pb(h.capacity),
        labels=dict(h.labels),
        running=tuple(convert.running_from_pb(r) for r in h.running),
        unreported=tuple(convert.attempt_result_from_pb(r) for r in h.unreported_results),
        version=h.version,
        protocol_version=h.protocol_version,
        draining=h.draining,
        instance_id=h.instance_id,
        containment=h.containment,
    )


def command_to_pb(cmd: Command) -> pb.ControllerMessage:
    if isinstance(cmd, AssignCmd):
        return pb.ControllerMessage(assign=pb.Assign(task_id=cmd.task_id, attempt=cmd.attempt,
                                                     spec=convert.spec_to_pb(cmd.spec), gpu_ids=list(cmd.gpu_ids)))
    if isinstance(cmd, AckCmd):
        return pb.ControllerMessage(ack=pb.Ack(task_id=cmd.task_id, attempt=cmd.attempt))
    if isinstance(cmd, CancelCmd):
        return pb.ControllerMessage(cancel=pb.Cancel(task_id=cmd.task_id, attempt=cmd.attempt, reason=cmd.reason))
    return pb.ControllerMessage(welcome=pb.Welcome(
        controller_name=cmd.controller_name, version=__version__, protocol_version=PROTOCOL_VERSION,
        executor_name=cmd.executor_name, usage_interval_s=cmd.usage_interval_s,
        output_offsets=[pb.OutputOffset(task_id=t, attempt=a, offset=o) for t, a, o in cmd.output_offsets]))


async def connect(core: ControllerCore, requests: Any, context: Any) -> AsyncIterator[pb.ControllerMessage]:
    """Serve one runner stream until it ends, is replaced, or the controller stops."""
    ident = peer_identity(context)
    cert_name = ident[1] if ident else ""
    try:
        first = await asyncio.wait_for(requests.__anext__(), HELLO_TIMEOUT_S)
    except (TimeoutError, StopAsyncIteration):
        await context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                            "the runner sent no Hello; the first message of Connect must be Hello")
    if first.WhichOneof("msg") != "hello":
        await context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                            f"the first message of Connect must be Hello, got {first.WhichOneof('msg')}")
    h = first.hello
    if h.protocol_version != PROTOCOL_VERSION:
        await context.abort(
            grpc.StatusCode.FAILED_PRECONDITION,
            f"runner {h.version or '?'} speaks protocol {h.protocol_version} but controller {__version__} speaks "
            f"protocol {PROTOCOL_VERSION}; install the same dtask version on both")
    if h.name and h.name != cert_name:
        await context.abort(
            grpc.StatusCode.PERMISSION_DENIED,
            f"Hello names executor {h.name!r} but the certificate is for {cert_name!r}; run the runner with "
            f"--name {cert_name} or issue a certificate for {h.name!r} (dtask certs issue --role runner)")
    guard = ReportGuard(cert_name, CoreOwners(core), lambda: reports.rejected(core))
    hello, tell = guard.filter_hello(hello_from_pb(h, cert_name))
    session = reports.connected(core, hello)
    for told in tell:
        session.send(told)
    reader = asyncio.create_task(_read(core, session, requests, guard))
    try:
        while True:
            cmd = await session.outbox.get()
            if cmd is None:
                if guard.refusal:
                    await context.abort(grpc.StatusCode.PERMISSION_DENIED, guard.refusal)
                if session.ended_because:
                    await context.abort(grpc.StatusCode.ABORTED, session.ended_because)
                return
            yield command_to_pb(cmd)
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):  # _read logs whatever else ends it
            await reader
        reports.disconnected(core, session)


async def _read(core: ControllerCore, session: Session, requests: Any, guard: ReportGuard) -> None:
    try:
        async for msg in requests:
            if not reports.seen(core, session):
                break
            _dispatch(core, session, guard, msg)
            if guard.refusal:
                break
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # a broken stream ends the session; the runner reconnects
        log.info("executor %s stream ended: %s", session.name, exc)
    finally:
        session.send(None)


def _dispatch(core: ControllerCore, session: Session, guard: ReportGuard, msg: pb.RunnerMessage) -> None:
    """Hand one runner message to its report handler (reports about foreign attempts are not applied)."""
    kind = message_kind(msg)
    match kind:
        case "usage":
            reports.usage(core, session.name, convert.usage_from_pb(msg.usage.sample))
        case "output":
            o = msg.output
            if guard.allows("output", o.task_id, o.attempt):
                reports.output(core, o.task_id, o.attempt, o.offset, o.data)
        case "progress":
            p = msg.progress
            if guard.allows("progress", p.task_id, p.attempt):
                reports.progress(core, session.name, p.task_id, p.attempt, convert.progress_from_pb(p.progress))
        case "finished":
            f = msg.finished
            if guard.allows("a result", f.task_id, f.attempt):
                reports.finished(core, session.name, convert.attempt_result_from_pb(f))
            else:
                session.send(AckCmd(f.task_id, f.attempt))  # not applied; the runner need not send it again
        case "drain":
            reports.runner_draining(core, session.name, msg.drain.draining)
        case "refused":
            r = msg.refused
            reports.refused(core, session.name, r.task_id, r.attempt, r.reason)
        case "hello" | None:  # a second Hello, or a message this controller does not know
            reports.unexpected(core, session.name, msg.WhichOneof("msg"))
        case _:
            assert_never(kind)
