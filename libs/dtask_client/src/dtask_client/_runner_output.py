"""An attempt's whole output read straight from the runner that ran it, in one hop, when it is large; the
controller relays it otherwise, and after a direct read that failed, from where that read stopped."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

import grpc
from dtask_common.models import OutputChunk, Task
from dtask_common.roles import runner_identity_host
from dtask_common.server import client_options
from grpc import aio

from dtask_client import _calls as c
from dtask_client._follow import noticed

log = logging.getLogger(__name__)

#: Outputs smaller than this come from the controller (its copy covers them, or one short relay does): a direct
#: read would cost a second connection and TLS handshake for little.
DIRECT_MIN_BYTES = 8 * 1024 * 1024
#: A runner the client cannot reach (a firewall between them) costs at most this before the controller relays.
CONNECT_S = 1.0


HEALTH_CHECK = "/grpc.health.v1.Health/Check"  # open to every certificate; b"" asks about the server as a whole


class RunnerUnreachable(Exception):
    """The output cannot be read from its runner: the message says why (the controller relays it instead)."""


def executor_of(task: Task, attempt: int) -> str:
    """The executor that ran the attempt (0: the latest), or '' when it has not run."""
    ran = [a for a in task.attempts if a.number == attempt] if attempt else task.attempts[-1:]
    return ran[0].executor if ran else ""


@dataclass
class WholeRead:
    """One read of an attempt's whole output (no I/O: the shells call and stream): a probe of its size, for a
    large one the runner's log, then whatever the runner did not give, relayed by the controller."""

    task: Task
    attempt: int  # as asked (0: the latest)
    on_notice: Callable[[str], None] | None
    number: int = 0  # the attempt read from its runner (0: none)
    runner: str = ""  # the executor that ran it
    sent: int = 0  # bytes of the output passed on so far

    def probe(self) -> c.StreamCall[OutputChunk]:
        """A one-byte tail read: its chunk says how large the output is, and which attempt it is."""
        return c.output(self.task.id, self.attempt, 1)

    def executor(self, probe: list[OutputChunk]) -> str:
        """The executor to read from directly ('' for an output small enough for the controller to give)."""
        if not probe or probe[-1].total_bytes < DIRECT_MIN_BYTES:
            return ""
        self.number = probe[-1].attempt
        self.runner = executor_of(self.task, self.number)
        return self.runner

    def options(self) -> list[tuple[str, int | str]]:
        """The direct channel's options: its TLS peer must be the runner that ran the attempt, by the name its
        certificate carries for it (not merely a certificate of ours naming the host dialled)."""
        return [*client_options(), ("grpc.ssl_target_name_override", runner_identity_host(self.runner))]

    def direct(self) -> c.StreamCall[OutputChunk]:
        """What to ask the runner for: the rest of the attempt's log."""
        return c.runner_output(self.task.id, self.number, self.sent)

    def piece(self, piece: OutputChunk) -> bytes:
        """A piece of the runner's log, checked to follow what was passed on."""
        if piece.offset != self.sent:
            raise RunnerUnreachable(f"the runner sent bytes from offset {piece.offset}, not {self.sent}")
        self.sent += len(piece.data)
        return piece.data

    def failed(self, executor: str, exc: Exception) -> None:
        why = (exc.details() or str(exc.code())) if isinstance(exc, grpc.RpcError) else str(exc)
        log.info("task %s's output comes through the controller: runner %s: %s", self.task.id, executor, why)

    def relay(self) -> c.StreamCall[OutputChunk]:
        """The controller's stream of the whole output (the part already passed on is skipped)."""
        return c.output(self.task.id, self.number or self.attempt, 0)

    def relayed(self, chunk: OutputChunk) -> bytes:
        """A relayed chunk, less the bytes the runner gave already; its notice goes to on_notice."""
        if chunk.offset < self.sent:
            chunk = dataclasses.replace(chunk, data=chunk.data[self.sent - chunk.offset :])
        return noticed(chunk, self.on_notice)


def read_direct(address: str, credentials: grpc.ChannelCredentials, read: WholeRead) -> Iterator[bytes]:
    """The attempt's log from the runner's own service (ReadOutput); raises RunnerUnreachable, or grpc.RpcError,
    when it cannot be read (the caller relays the rest)."""
    with grpc.secure_channel(address, credentials, options=read.options()) as channel:
        # Connected within CONNECT_S, or given up: a health check waits for the connection that long.
        # (grpc.channel_ready_future would do, but closing its channel then waits out a 0.2 s poll.)
        health = channel.unary_unary(HEALTH_CHECK, request_serializer=bytes, response_deserializer=bytes)
        try:
            health(b"", timeout=CONNECT_S, wait_for_ready=True)
        except grpc.RpcError as exc:
            if exc.code() is grpc.StatusCode.DEADLINE_EXCEEDED:  # type: ignore[attr-defined]
                raise RunnerUnreachable(f"no connection to the runner at {address} within {CONNECT_S:g} s") from None
            raise
        call = read.direct()
        for piece in call.rpc.method(channel)(call.request):
            yield read.piece(call.convert(piece))


async def read_direct_async(
    address: str, credentials: grpc.ChannelCredentials, read: WholeRead
) -> AsyncIterator[bytes]:
    """As read_direct, on a grpc.aio channel of the running loop."""
    async with aio.secure_channel(address, credentials, options=read.options()) as channel:
        try:
            await asyncio.wait_for(channel.channel_ready(), CONNECT_S)
        except TimeoutError:
            raise RunnerUnreachable(f"no connection to the runner at {address} within {CONNECT_S:g} s") from None
        call = read.direct()
        async for piece in call.rpc.method(channel)(call.request):
            yield read.piece(call.convert(piece))
