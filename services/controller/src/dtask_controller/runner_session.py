"""Controller.Connect: one runner session stream (Hello checks, then commands down and reports up)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any, assert_never

import grpc
from dtask.v1 import controller_pb2 as pb
from dtask_common import PROTOCOL_VERSION, __version__, convert
from dtask_common.authz import peer_identity
from dtask_common.models import (
    AttemptResult,
    Command,
    DrainReport,
    Hello,
    OutputChunk,
    OutputReadReport,
    ProgressReport,
    RefusalReport,
    UsageSample,
)

from dtask_controller import output_reads, reports
from dtask_controller.core import ControllerCore
from dtask_controller.ownership import ReportGuard
from dtask_controller.queries import CoreOwners
from dtask_controller.runner_messages import AckCmd, Session, WelcomeCmd

log = logging.getLogger(__name__)
HELLO_TIMEOUT_S = 30.0
MAX_BATCH_COMMANDS = 256
MAX_BATCH_BYTES = 4 * 1024 * 1024  # well under the 16 MiB message limit


async def connect(core: ControllerCore, requests: Any, context: Any) -> AsyncIterator[pb.ControllerMessage]:
    """Serve one runner stream until it ends, is replaced, or the controller stops."""
    ident = peer_identity(context)
    cert_name = ident[1] if ident else ""
    try:
        first = await asyncio.wait_for(requests.__anext__(), HELLO_TIMEOUT_S)
    except (TimeoutError, StopAsyncIteration):
        await context.abort(
            grpc.StatusCode.FAILED_PRECONDITION, "the runner sent no Hello; the first message of Connect must be Hello"
        )
    if first.WhichOneof("msg") != "hello":
        await context.abort(
            grpc.StatusCode.FAILED_PRECONDITION,
            f"the first message of Connect must be Hello, got {first.WhichOneof('msg')}",
        )
    h = first.hello
    if h.protocol_version != PROTOCOL_VERSION:
        await context.abort(
            grpc.StatusCode.FAILED_PRECONDITION,
            f"runner {h.version or '?'} speaks protocol {h.protocol_version} but controller {__version__} speaks "
            f"protocol {PROTOCOL_VERSION}; install the same dtask version on both",
        )
    if h.name and h.name != cert_name:
        await context.abort(
            grpc.StatusCode.PERMISSION_DENIED,
            f"Hello names executor {h.name!r} but the certificate is for {cert_name!r}; run the runner with "
            f"--name {cert_name} or issue a certificate for {h.name!r} (dtask certs issue --role runner)",
        )
    guard = ReportGuard(cert_name, CoreOwners(core), lambda reason: reports.rejected(core, reason))
    hello, tell = guard.filter_hello(convert.hello_from_pb(h, name=cert_name))
    session = reports.connected(core, hello)
    for told in tell:
        session.send(told)
    reader = asyncio.create_task(_read(core, session, requests, guard))
    try:
        async for msg in _commands(session):
            yield msg
        if session.protocol_error:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, session.protocol_error)
        if guard.refusal:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, guard.refusal)
        if session.ended_because:
            await context.abort(grpc.StatusCode.ABORTED, session.ended_because)
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):  # _read logs whatever else ends it
            await reader
        output_reads.ended(session)
        reports.disconnected(core, session)


async def _commands(session: Session) -> AsyncIterator[pb.ControllerMessage]:
    """The session's outbox as messages down the stream until its None: whatever is queued when the stream
    is free goes as one ControllerBatch (a lone command at once, as itself; a Welcome always alone)."""
    held: list[Command | None] = []
    while True:
        cmd = held.pop() if held else await session.outbox.get()
        if cmd is None:
            return
        first = convert.command_to_pb(cmd)
        if isinstance(cmd, WelcomeCmd):
            yield first
            continue
        msgs, size = [first], first.ByteSize()
        while not session.outbox.empty() and len(msgs) < MAX_BATCH_COMMANDS:
            nxt = session.outbox.get_nowait()
            if nxt is None or isinstance(nxt, WelcomeCmd):
                held.append(nxt)
                break
            msg = convert.command_to_pb(nxt)
            size += msg.ByteSize()
            if size > MAX_BATCH_BYTES:
                held.append(nxt)
                break
            msgs.append(msg)
        yield convert.commands_batch_pb(msgs)


async def _read(core: ControllerCore, session: Session, requests: Any, guard: ReportGuard) -> None:
    """Read the runner's messages; each goes to the core's group commit (applied with whatever else arrives
    in the same turn of the event loop, in one change)."""
    try:
        async for msg in requests:
            if not reports.seen(core, session):
                break
            if msg.WhichOneof("msg") == "usage":
                # A lone usage sample writes nothing to the store and orders nothing: taken at once, not in a
                # group's change (a fleet sends a thousand a second).
                if not session.broken:
                    reports.usage(core, session.name, convert.usage_from_pb(msg.usage.sample))
                continue
            try:
                parts = convert.report_parts(msg)
            except convert.BadBatch as exc:
                session.protocol_error = f"executor {session.name}: {exc}"
                log.warning("executor %s session ended: %s", session.name, exc)
                break
            reports.arrived(
                core,
                session,
                functools.partial(_apply, core, session, guard, parts),
                functools.partial(_broken, session),
            )
            if guard.refusal or session.protocol_error:
                break
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # a broken stream ends the session; the runner reconnects
        log.info("executor %s stream ended: %s", session.name, exc)
    finally:
        reports.apply_arrived(core)  # what this session sent is applied before it ends
        session.send(None)


def _apply(core: ControllerCore, session: Session, guard: ReportGuard, parts: Sequence[pb.RunnerMessage]) -> None:
    """One message of the runner (or a batch's, in order), inside the group's change."""
    if session.broken:
        return
    for msg in parts:
        if guard.refusal:
            break
        _dispatch(core, session, guard, msg)
    if guard.refusal:
        reports.end_after_commit(core, session)  # after the acks of what it sent before


def _broken(session: Session, exc: BaseException) -> None:
    """What the runner sent could not be applied (a store that cannot commit): the session ends, the runner
    reconnects and reports again what it holds."""
    log.info("executor %s stream ended: %s", session.name, exc)
    session.broken = True
    session.send(None)


# Reports about one attempt: checked against the session's attempts before anything of them is decoded.
_ATTEMPT_REPORTS = {"output": "output", "progress": "progress", "finished": "a result"}


def _dispatch(core: ControllerCore, session: Session, guard: ReportGuard, msg: pb.RunnerMessage) -> None:
    """Hand one runner message (never a batch) to its report handler (reports about foreign attempts are not
    applied): the one place each kind of message is taken (but a lone usage sample, which _read takes)."""
    kind = msg.WhichOneof("msg")
    if kind in _ATTEMPT_REPORTS:
        about = getattr(msg, kind)
        if not guard.allows(_ATTEMPT_REPORTS[kind], about.task_id, about.attempt):
            if kind == "finished":  # not applied; the runner need not send it again
                session.send(AckCmd(about.task_id, about.attempt))
            return
    if kind == "hello":  # a second Hello: not decoded, only noted
        reports.unexpected(core, session.name, kind)
        return
    try:
        report = convert.report_from_pb(msg)
    except convert.UnknownMessage:  # a message this controller does not know (from a newer runner?)
        reports.unexpected(core, session.name, kind)
        return
    match report:
        case UsageSample():
            reports.usage(core, session.name, report)
        case OutputChunk():
            reports.output(core, report.task_id, report.attempt, report.offset, report.data)
        case ProgressReport():
            reports.progress(core, session.name, report.task_id, report.attempt, report.progress, report.metrics)
        case AttemptResult():
            reports.finished(core, session.name, report)
        case DrainReport():
            reports.runner_draining(core, session.name, report.draining)
        case RefusalReport():
            reports.refused(core, session.name, report.task_id, report.attempt, report.reason)
        case OutputReadReport():
            output_reads.replied(session, report)
        case Hello():  # taken above
            reports.unexpected(core, session.name, "hello")
        case _:
            assert_never(report)
