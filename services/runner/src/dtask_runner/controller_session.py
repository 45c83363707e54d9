"""The runner's session with the controller: one Connect stream, reconnected with backoff and jitter."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import Any, assert_never

import grpc
from dtask.v1 import controller_pb2 as pb
from dtask.v1 import controller_pb2_grpc
from dtask_common import convert
from dtask_common.address import PortRanges, unavailable_message
from dtask_common.certrecords import RecordError
from dtask_common.models import (
    AckCmd,
    AssignCmd,
    AttemptResult,
    CancelCmd,
    DrainReport,
    MetricPoint,
    OutputChunk,
    OutputReadReport,
    Progress,
    ProgressReport,
    ReadOutputCmd,
    RefusalReport,
    Revoked,
    RevokedCmd,
    UsageSample,
    WelcomeCmd,
)
from dtask_common.revocation import Revocations
from dtask_common.server import client_options
from dtask_common.tls import TlsFiles, channel_credentials
from google.protobuf import unknown_fields

from dtask_runner import logread
from dtask_runner.attempt_request import AttemptRequest
from dtask_runner.refusal import Refused, refusal
from dtask_runner.runner import Runner
from dtask_runner.send_queue import SendQueue

log = logging.getLogger(__name__)

BACKOFF_FIRST_S = 0.2
WELCOME_TIMEOUT_S = 15.0
HELLO_RESULTS_BYTES = 4 * 1024 * 1024
_FATAL_HINTS = {
    grpc.StatusCode.FAILED_PRECONDITION: "the controller refused this runner",
    grpc.StatusCode.PERMISSION_DENIED: "the controller refused this runner's certificate",
    grpc.StatusCode.UNAUTHENTICATED: "the controller did not accept this runner's certificate",
    grpc.StatusCode.UNIMPLEMENTED: "the controller does not serve runner sessions",
}


class NameTakenOver(Refused):
    """Another runner process connected under this runner's name: reconnecting would only fight over it."""


def backoff_delays(first: float, cap: float, rng: Callable[[], float] = random.random) -> Iterator[float]:
    """Exponential backoff with jitter: each delay is in [d/2, d] for d = first·2ⁿ capped at cap."""
    d = first
    while True:
        yield min(cap, d) * (0.5 + 0.5 * rng())
        d = min(cap, d * 2)


async def _raise_status(call: Any) -> None:
    """The stream ended: raise the status the controller ended it with, unless OK (a stream call is not
    awaitable, unlike a unary one)."""
    code = await call.code()
    if code != grpc.StatusCode.OK:
        raise grpc.aio.AioRpcError(
            code, await call.initial_metadata(), await call.trailing_metadata(), await call.details()
        )


class ControllerSession:
    """Keeps a Connect stream open to the controller; the runner's Uplink."""

    def __init__(
        self,
        runner: Runner,
        address: str,
        files: TlsFiles,
        *,
        reconnect_max_s: float = 10.0,
        ranges: PortRanges | None = None,
        revocations: Revocations | None = None,
    ):
        self.runner = runner
        self.revocations = revocations  # the Runner service's: the controller's revoked list is added to it
        self.address = address
        self.ranges = ranges or PortRanges()
        self.files = files
        self.reconnect_max_s = max(reconnect_max_s, BACKOFF_FIRST_S)
        self.controller_name = ""
        self._call: Any = None
        self._connected = asyncio.Event()
        self._gen = 0
        self._reported: dict[tuple[str, int], int] = {}
        self._queue: SendQueue[pb.RunnerMessage] = SendQueue()
        self._reads: set[asyncio.Task[bool]] = set()  # answers to the controller's output reads
        self._writer: asyncio.Task[None] | None = None
        self.writes = 0  # messages written on the stream (a batch counts once)
        self.sessions = 0
        self.unknown_commands: Counter[str] = Counter()  # by type: fields of ControllerMessage.msg it does not know

    # ---- Uplink ----

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def progress(
        self, task_id: str, attempt: int, progress: Progress | None, metrics: tuple[MetricPoint, ...] = ()
    ) -> None:
        self._send_soon(convert.report_to_pb(ProgressReport(task_id, attempt, progress, metrics)))

    def usage(self, sample: UsageSample) -> None:
        self._send_soon(convert.report_to_pb(sample))

    def drain(self, draining: bool) -> None:
        self._send_soon(convert.report_to_pb(DrainReport(draining)))

    def finished(self, result: AttemptResult) -> None:
        key = (result.task_id, result.attempt)
        if not self.connected or self._reported.get(key) == self._gen:
            return  # the next Hello carries it (or this session's Hello already did)
        self._reported[key] = self._gen
        self._send_soon(convert.report_to_pb(result))

    def refused(self, task_id: str, attempt: int, reason: str) -> None:
        self._send_soon(convert.report_to_pb(RefusalReport(task_id, attempt, reason)))

    async def output(self, chunk: OutputChunk) -> bool:
        """Send a chunk in the current session. Without one, wait for the next and return False: its
        Welcome says where the controller wants the output from (what went into a broken one may be lost)."""
        if not self.connected:
            await self._connected.wait()
            return False
        msg = convert.report_to_pb(chunk)
        sent = self._queue.put(msg, self._gen, msg.ByteSize(), wait=True)
        assert sent is not None
        return await sent

    # ---- writing ----

    async def _send_read(self, read: OutputReadReport) -> bool:
        """Send the answer to an output read in this session; False when it is gone."""
        if not self.connected:
            return False
        msg = convert.report_to_pb(read)
        sent = self._queue.put(msg, self._gen, msg.ByteSize(), wait=True)
        assert sent is not None
        return await sent

    def _send_soon(self, msg: pb.RunnerMessage) -> None:
        """Best effort: dropped when not connected (results stay in the journal, usage is periodic)."""
        if self.connected:
            self._queue.put(msg, self._gen, msg.ByteSize())

    async def _write_loop(self, call: Any, gen: int) -> None:
        """Write what is queued for this session: one message as itself, several ready at once as one
        RunnerBatch (nothing waits for company: a lone message goes at once)."""
        while True:
            items = await self._queue.take()
            live = [i for i in items if i.gen == gen]
            for i in items:
                if i.gen != gen:
                    i.done(False)
            if not live:
                continue
            ok = False
            try:
                await call.write(convert.reports_batch_pb([i.msg for i in live]))
                ok = True
                self.writes += 1
            except (grpc.RpcError, asyncio.InvalidStateError, RuntimeError) as exc:
                log.debug("write failed, the session is breaking: %s", exc)
                self._connected.clear()
            finally:
                for i in live:
                    i.done(ok)
            if not ok:
                self._queue.drop()
                return

    # ---- the session loop ----

    async def run(self) -> None:
        """Connect, serve, and reconnect forever (until cancelled)."""
        delays = backoff_delays(BACKOFF_FIRST_S, self.reconnect_max_s)
        creds = channel_credentials(self.files)
        while True:
            welcomed = self.sessions
            try:
                async with grpc.aio.secure_channel(self.address, creds, options=client_options()) as channel:
                    await self._session(controller_pb2_grpc.ControllerStub(channel))
            except asyncio.CancelledError:
                raise
            except grpc.RpcError as exc:
                if exc.code() == grpc.StatusCode.ABORTED:
                    raise NameTakenOver(exc.details() or "another runner took over this runner's name") from None
                if (why := refusal(exc.code(), exc.details() or "")) is not None:
                    raise Refused(why) from None
                self._log_break(exc, welcomed=self.sessions != welcomed)
            except (TimeoutError, ConnectionError) as exc:
                log.warning("session with %s ended: %s", self.address, exc or "no welcome in time")
            except Exception:
                log.exception("session with %s failed", self.address)
            finally:
                self._connected.clear()
                self._call = None
            if self.sessions != welcomed:
                delays = backoff_delays(BACKOFF_FIRST_S, self.reconnect_max_s)
            delay = next(delays)
            log.info("reconnecting to %s in %.1f s", self.address, delay)
            await asyncio.sleep(delay)

    def _log_break(self, exc: grpc.RpcError, *, welcomed: bool) -> None:
        code = exc.code() if hasattr(exc, "code") else None
        details = exc.details() if hasattr(exc, "details") else str(exc)
        if code == grpc.StatusCode.INTERNAL and not welcomed:
            # grpc.aio may turn a refusal at the start of a stream into INTERNAL.
            log.error(
                "the controller refused this runner's session before welcoming it (%s); its log says why "
                "(name/certificate or version mismatch?)",
                details,
            )
        elif code in _FATAL_HINTS:
            log.error("%s (%s): %s", _FATAL_HINTS[code], code.name if code else "", details)
        elif code == grpc.StatusCode.UNAVAILABLE:
            # The same wording as the client's: it says what to do (TLS from another CA, wrong port, DNS, ...).
            said = (exc.details() if hasattr(exc, "details") else "") or ""
            log.warning("controller unavailable: %s", unavailable_message(self.address, said, self.ranges))
        else:
            log.warning("session with %s ended: %s %s", self.address, code.name if code else "", details)

    async def _session(self, stub: controller_pb2_grpc.ControllerStub) -> None:
        call = stub.Connect()
        info = self.runner.hello_info()
        # Keep the Hello well under the message limit; the rest follow as AttemptFinished.
        carried: list[AttemptResult] = []
        late: list[AttemptResult] = []
        size = 0
        for r in info.unreported:
            msg = convert.attempt_result_to_pb(r)
            size += msg.ByteSize()
            (carried if size <= HELLO_RESULTS_BYTES else late).append(r)
        await call.write(convert.report_to_pb(dataclasses.replace(info, unreported=tuple(carried))))
        first = await asyncio.wait_for(call.read(), WELCOME_TIMEOUT_S)
        if first is grpc.aio.EOF:
            await _raise_status(call)
            raise ConnectionError("the controller closed the session before welcoming this runner")
        w = convert.command_from_pb(first) if first.WhichOneof("msg") == "welcome" else None
        if not isinstance(w, WelcomeCmd):
            raise ConnectionError(f"the controller sent {first.WhichOneof('msg')} before welcome")
        self.controller_name = w.controller_name
        self.runner.on_welcome(w.usage_interval_s, w.output_tail_bytes)
        self._revoked(w.revoked)
        for task_id, attempt, offset in w.output_offsets:
            self.runner.resume_output(task_id, attempt, offset)
        self._gen += 1
        for r in carried:
            self._reported[(r.task_id, r.attempt)] = self._gen
        self._call = call
        self._queue.drop()  # what an earlier session left unwritten
        self._writer = asyncio.get_running_loop().create_task(self._write_loop(call, self._gen))
        self._connected.set()
        self.sessions += 1
        log.info(
            "connected to controller %s (%s) as %s: %d running, %d results to report",
            self.address,
            w.controller_name,
            w.executor_name or info.name,
            len(info.running),
            len(carried) + len(late),
        )
        try:
            for r in late:
                self.finished(r)
            self.runner.on_connected()
            while True:
                msg = await call.read()
                if msg is grpc.aio.EOF:
                    await _raise_status(call)
                    raise ConnectionError("the controller ended the session")
                self._handle(msg)
        finally:
            self._stop_writer()

    def _stop_writer(self) -> None:
        """The session ended: its writer stops and what it left unwritten is dropped (said so to the waiting)."""
        self._connected.clear()
        if self._writer is not None:
            self._writer.cancel()
            self._writer = None
        self._queue.drop()

    def _handle(self, msg: pb.ControllerMessage) -> None:
        """One message down the stream: a command, or a batch of them handled in order."""
        if msg.WhichOneof("msg") != "batch":
            self._handle_one(msg)
            return
        try:
            parts = convert.command_parts(msg)
        except convert.BadBatch as exc:
            self.unknown_commands["bad batch"] += 1
            log.error("ignoring a batch of commands from the controller: %s", exc)
            return
        for part in parts:
            self._handle_one(part)

    def _handle_one(self, msg: pb.ControllerMessage) -> None:
        try:
            cmd = convert.command_from_pb(msg)
        except convert.UnknownMessage:
            self._unknown(msg, msg.WhichOneof("msg"))
            return
        except ValueError as exc:
            log.error("assignment %s/%d is unreadable: %s", msg.assign.task_id, msg.assign.attempt, exc)
            return
        match cmd:
            case AssignCmd():
                self.runner.on_assign(AttemptRequest(cmd.task_id, cmd.attempt, cmd.spec, cmd.gpu_ids))
            case CancelCmd():
                self.runner.on_cancel(cmd.task_id, cmd.attempt, cmd.reason)
            case AckCmd():
                self._reported.pop((cmd.task_id, cmd.attempt), None)
                self.runner.on_ack(cmd.task_id, cmd.attempt)
            case WelcomeCmd():
                self.runner.on_welcome(cmd.usage_interval_s, cmd.output_tail_bytes)
            case ReadOutputCmd():
                logread.answer_soon(self.runner, cmd, self._send_read, self._reads)
            case RevokedCmd():
                self._revoked(cmd.certificates)
            case _:
                assert_never(cmd)

    def _revoked(self, entries: Sequence[Revoked]) -> None:
        """Certificates the controller revoked: the Runner service refuses them from now on (and after a restart)."""
        if self.revocations is None:
            return
        fresh = [r for r in entries if self.revocations.refusal(r.serial) is None]
        if not fresh:
            return
        try:
            self.revocations.revoke(fresh)
        except (RecordError, OSError) as exc:
            log.error("cannot record %d revoked certificate(s) in %s: %s", len(fresh), self.revocations.path, exc)
            return
        log.warning(
            "the Runner service now refuses %d more revoked certificate(s): %s",
            len(fresh),
            ", ".join(f"{r.role or '?'}/{r.name or '?'}" for r in fresh),
        )

    def _unknown(self, msg: pb.ControllerMessage, which: str | None) -> None:
        """A command this runner does not know (from a newer controller): logged with its type, counted, ignored."""
        kind = which or ", ".join(f"field {f.field_number}" for f in unknown_fields.UnknownFieldSet(msg)) or "empty"
        self.unknown_commands[kind] += 1
        log.warning(
            "ignoring an unknown command from the controller (%s); %d so far", kind, sum(self.unknown_commands.values())
        )

    async def close(self) -> None:
        self._stop_writer()
        if self._call is not None:
            try:
                await self._call.done_writing()
            except (grpc.RpcError, grpc.aio.BaseError, RuntimeError) as exc:  # the stream is already broken
                log.debug("closing the session's stream: %s", exc)
