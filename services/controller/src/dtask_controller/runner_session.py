"""Controller.Connect: one runner session stream (Hello checks, then commands down and reports up)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any, assert_never

import grpc
from dtask.v1 import controller_pb2 as pb
from dtask_common import PROTOCOL_VERSION, __version__, convert
from dtask_common.authz import peer_identity
from dtask_common.models import (
    AttemptResult,
    DrainReport,
    Hello,
    OutputChunk,
    ProgressReport,
    RefusalReport,
    UsageSample,
)

from dtask_controller.domain import AckCmd, Session
from dtask_controller.engine import Engine
from dtask_controller.ownership import EngineOwners, ReportGuard

log = logging.getLogger("dtask.controller")
HELLO_TIMEOUT_S = 30.0


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
    hello, tell = guard.filter_hello(convert.hello_from_pb(h, name=cert_name))
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
            yield convert.command_to_pb(cmd)
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
            try:
                report = convert.report_from_pb(msg)
            except convert.UnknownMessage as exc:
                log.warning("executor %s sent an unexpected %s message; ignored", session.name, exc.kind)
                continue
            match report:
                case UsageSample():
                    engine.usage(session.name, report)
                case OutputChunk():
                    if guard.allows("output", report.task_id, report.attempt):
                        engine.output(report.task_id, report.attempt, report.offset, report.data)
                case ProgressReport():
                    if guard.allows("progress", report.task_id, report.attempt):
                        engine.report_progress(session.name, report.task_id, report.attempt, report.progress)
                case AttemptResult():
                    if guard.allows("a result", report.task_id, report.attempt):
                        engine.attempt_finished(session.name, report)
                    else:
                        session.send(AckCmd(report.task_id, report.attempt))  # not applied; need not come again
                case DrainReport():
                    engine.set_runner_draining(session.name, report.draining)
                case RefusalReport():
                    engine.assignment_refused(session.name, report.task_id, report.attempt, report.reason)
                case Hello():
                    log.warning("executor %s sent an unexpected hello message; ignored", session.name)
                case _:
                    assert_never(report)
            if guard.refusal:
                break
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # a broken stream ends the session; the runner reconnects
        log.info("executor %s stream ended: %s", session.name, exc)
    finally:
        session.send(None)
