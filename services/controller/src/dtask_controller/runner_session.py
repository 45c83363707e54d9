"""Controller.Connect: one runner session stream (Hello checks, then commands down and reports up)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc
from dtask.v1 import controller_pb2 as pb
from dtask_common import PROTOCOL_VERSION, __version__, convert
from dtask_common.authz import peer_identity

from dtask_controller.domain import AckCmd, AssignCmd, CancelCmd, Command, Hello, Session
from dtask_controller.engine import Engine
from dtask_controller.ownership import EngineOwners, ReportGuard

log = logging.getLogger("dtask.controller")
HELLO_TIMEOUT_S = 30.0


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


async def connect(engine: Engine, requests: Any, context: Any) -> AsyncIterator[pb.ControllerMessage]:
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
    guard = ReportGuard(cert_name, EngineOwners(engine.scheduler, engine.store), engine.count_rejected_report)
    hello, tell = guard.filter_hello(hello_from_pb(h, cert_name))
    session = engine.runner_connected(hello)
    for told in tell:
        session.send(told)
    reader = asyncio.create_task(_read(engine, session, requests, guard))
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
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader
        engine.runner_disconnected(session)


async def _read(engine: Engine, session: Session, requests: Any, guard: ReportGuard) -> None:
    try:
        async for msg in requests:
            if not engine.seen(session):
                break
            kind = msg.WhichOneof("msg")
            if kind == "usage":
                engine.usage(session.name, convert.usage_from_pb(msg.usage.sample))
            elif kind == "output":
                o = msg.output
                if guard.allows("output", o.task_id, o.attempt):
                    engine.output(o.task_id, o.attempt, o.offset, o.data)
            elif kind == "progress":
                p = msg.progress
                if guard.allows("progress", p.task_id, p.attempt):
                    engine.report_progress(session.name, p.task_id, p.attempt, convert.progress_from_pb(p.progress))
            elif kind == "finished":
                f = msg.finished
                if guard.allows("a result", f.task_id, f.attempt):
                    engine.attempt_finished(session.name, convert.attempt_result_from_pb(f))
                else:
                    session.send(AckCmd(f.task_id, f.attempt))  # not applied; the runner need not send it again
            elif kind == "drain":
                engine.set_runner_draining(session.name, msg.drain.draining)
            elif kind == "refused":
                engine.assignment_refused(session.name, msg.refused.task_id, msg.refused.attempt, msg.refused.reason)
            else:
                log.warning("executor %s sent an unexpected %s message; ignored", session.name, kind)
            if guard.refusal:
                break
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # a broken stream ends the session; the runner reconnects
        log.info("executor %s stream ended: %s", session.name, exc)
    finally:
        session.send(None)
