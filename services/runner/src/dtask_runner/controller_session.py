"""The runner's session with the controller: one Connect stream, reconnected with backoff and jitter."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any, assert_never

import grpc
from dtask.v1 import controller_pb2 as pb
from dtask.v1 import controller_pb2_grpc
from dtask_common import convert
from dtask_common.address import unavailable_message
from dtask_common.models import (
    AckCmd,
    AssignCmd,
    AttemptResult,
    CancelCmd,
    DrainReport,
    OutputChunk,
    Progress,
    ProgressReport,
    ReadOutputCmd,
    RefusalReport,
    UsageSample,
    WelcomeCmd,
)
from dtask_common.server import client_options
from dtask_common.tls import TlsFiles, channel_credentials
from google.protobuf import unknown_fields

from dtask_runner import logread
from dtask_runner.attempt_request import AttemptRequest
from dtask_runner.refusal import Refused, refusal
from dtask_runner.runner import Runner

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

    def __init__(self, runner: Runner, address: str, files: TlsFiles, *, reconnect_max_s: float = 10.0):
        self.runner = runner
        self.address = address
        self.files = files
        self.reconnect_max_s = max(reconnect_max_s, BACKOFF_FIRST_S)
        self.controller_name = ""
        self._call: Any = None
        self._write_lock = asyncio.Lock()
        self._connected = asyncio.Event()
        self._gen = 0
        self._reported: dict[tuple[str, int], int] = {}
        self._sends: set[asyncio.Task[bool]] = set()
        self.sessions = 0
        self.unknown_commands: Counter[str] = Counter()  # by type: fields of ControllerMessage.msg it does not know

    # ---- Uplink ----

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def progress(self, task_id: str, attempt: int, progress: Progress) -> None:
        self._send_soon(convert.report_to_pb(ProgressReport(task_id, attempt, progress)))

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
        return await self._write(convert.report_to_pb(chunk))

    # ---- writing ----

    def _send_soon(self, msg: pb.RunnerMessage) -> None:
        """Best effort: dropped when not connected (results stay in the journal, usage is periodic)."""
        if not self.connected:
            return
        task = asyncio.get_running_loop().create_task(self._write(msg))
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)

    async def _write(self, msg: pb.RunnerMessage) -> bool:
        async with self._write_lock:
            call = self._call
            if call is None or not self.connected:
                return False
            try:
                await call.write(msg)
                return True
            except (grpc.RpcError, asyncio.InvalidStateError, RuntimeError) as exc:
                log.debug("write failed, the session is breaking: %s", exc)
                self._connected.clear()
                return False

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
            log.warning("controller unavailable: %s", unavailable_message(self.address, said))
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
        self.runner.on_welcome(w.usage_interval_s)
        for task_id, attempt, offset in w.output_offsets:
            self.runner.resume_output(task_id, attempt, offset)
        self._gen += 1
        for r in carried:
            self._reported[(r.task_id, r.attempt)] = self._gen
        self._call = call
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
        for r in late:
            self.finished(r)
        self.runner.on_connected()
        while True:
            msg = await call.read()
            if msg is grpc.aio.EOF:
                await _raise_status(call)
                raise ConnectionError("the controller ended the session")
            self._handle(msg)

    def _handle(self, msg: pb.ControllerMessage) -> None:
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
                self.runner.on_welcome(cmd.usage_interval_s)
            case ReadOutputCmd():
                logread.answer_soon(self.runner, cmd, lambda r: self._write(convert.report_to_pb(r)), self._sends)
            case _:
                assert_never(cmd)

    def _unknown(self, msg: pb.ControllerMessage, which: str | None) -> None:
        """A command this runner does not know (from a newer controller): logged with its type, counted, ignored."""
        kind = which or ", ".join(f"field {f.field_number}" for f in unknown_fields.UnknownFieldSet(msg)) or "empty"
        self.unknown_commands[kind] += 1
        log.warning(
            "ignoring an unknown command from the controller (%s); %d so far", kind, sum(self.unknown_commands.values())
        )

    async def close(self) -> None:
        for t in list(self._sends):
            t.cancel()
        if self._call is not None:
            try:
                await self._call.done_writing()
            except (grpc.RpcError, grpc.aio.BaseError, RuntimeError) as exc:  # the stream is already broken
                log.debug("closing the session's stream: %s", exc)
