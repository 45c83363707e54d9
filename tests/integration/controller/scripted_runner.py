"""A scripted runner for tests and benchmarks: a real mTLS gRPC client of Controller.Connect, no processes."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import grpc
from dtask.v1 import common_pb2 as cpb
from dtask.v1 import controller_pb2 as pb
from dtask.v1 import controller_pb2_grpc
from dtask_common import PROTOCOL_VERSION, __version__, convert
from dtask_common.models import UsageSample

from tests.support import aio_channel, tls

_END = object()


class ScriptedRunner:
    """Speaks the runner side of Connect exactly as told; messages down are read with recv()."""

    def __init__(
        self,
        address: str,
        certs_dir: Path,
        name: str,
        *,
        slots: int = 1,
        cpus: float = 0,
        memory_mb: int = 0,
        gpus: Iterable[int] = (),
        labels: dict[str, str] | None = None,
        running: Iterable[tuple[str, int]] = (),
        unreported: Iterable[pb.AttemptFinished] = (),
        protocol_version: int = PROTOCOL_VERSION,
        hello_name: str | None = None,
        cert_stem: str | None = None,
    ):
        self.name = name
        self.channel = aio_channel(address, tls(certs_dir, cert_stem or f"runner-{name}"))
        self.stub = controller_pb2_grpc.ControllerStub(self.channel)
        self.hello = pb.Hello(
            name=name if hello_name is None else hello_name,
            runner_address="127.0.0.1:1",
            capacity=cpb.Capacity(slots=slots, cpus=cpus, memory_mb=memory_mb, gpus=list(gpus)),
            labels=labels or {},
            running=[cpb.RunningAttempt(task_id=t, attempt=a) for t, a in running],
            unreported_results=list(unreported),
            version=__version__,
            protocol_version=protocol_version,
        )
        self._up: asyncio.Queue[Any] = asyncio.Queue()
        self.call: Any = None
        self.welcome: pb.Welcome | None = None
        self._beat: asyncio.Task[None] | None = None
        self._parts: deque[pb.ControllerMessage] = deque()  # the rest of a ControllerBatch being read
        self.batches: list[list[str]] = []  # the kinds in each ControllerBatch received, in order

    async def _requests(self) -> AsyncIterator[pb.RunnerMessage]:
        yield pb.RunnerMessage(hello=self.hello)
        while True:
            msg = await self._up.get()
            if msg is _END:
                return
            yield msg

    async def connect(self, timeout: float = 10.0) -> pb.Welcome:
        """Open the stream, send Hello, return the Welcome (raises grpc.aio.AioRpcError when refused)."""
        self.call = self.stub.Connect(self._requests())
        first = await asyncio.wait_for(self.call.read(), timeout)
        if first is grpc.aio.EOF:
            await self.call.wait_for_connection()
            raise AssertionError(f"stream ended before Welcome: {await self.call.code()}")
        assert first.WhichOneof("msg") == "welcome", first
        self.welcome = first.welcome
        return first.welcome

    async def recv_raw(self, timeout: float = 10.0) -> pb.ControllerMessage:
        """The next message down the stream as sent (a ControllerBatch is not taken apart)."""
        msg = await asyncio.wait_for(self.call.read(), timeout)
        if msg is grpc.aio.EOF:
            raise EOFError(f"{self.name}: the controller ended the session")
        return msg

    async def recv(self, kind: str | None = None, timeout: float = 10.0) -> pb.ControllerMessage:
        """The next command down (of the given kind: assign, cancel, ack, welcome); the commands of a
        ControllerBatch come one by one (each batch's kinds are recorded in `batches`)."""
        if not self._parts:
            msg = await self.recv_raw(timeout)
            if msg.WhichOneof("msg") == "batch":
                self.batches.append([m.WhichOneof("msg") or "" for m in msg.batch.messages])
                self._parts.extend(msg.batch.messages)
            else:
                self._parts.append(msg)
        msg = self._parts.popleft()
        if kind is not None:
            assert msg.WhichOneof("msg") == kind, f"expected {kind}, got {msg}"
        return msg

    async def assign(self, timeout: float = 10.0) -> pb.Assign:
        return (await self.recv("assign", timeout)).assign

    def send(self, msg: pb.RunnerMessage) -> None:
        self._up.put_nowait(msg)

    def send_batch(self, *msgs: pb.RunnerMessage) -> None:
        """Several messages as one RunnerBatch."""
        self.send(pb.RunnerMessage(batch=pb.RunnerBatch(messages=list(msgs))))

    def usage(self, cpu: float = 10.0, at: float = 0.0) -> None:
        sample = convert.usage_to_pb(
            UsageSample(at=at or 1.0, cpu_percent=cpu, per_cpu_percent=(cpu, cpu), ram_percent=20.0)
        )
        self.send(pb.RunnerMessage(usage=pb.UsageReport(sample=sample)))

    def progress(self, task_id: str, attempt: int, step: int, total: int) -> None:
        self.send(
            pb.RunnerMessage(
                progress=pb.ProgressUpdate(
                    task_id=task_id, attempt=attempt, progress=cpb.Progress(label="train", step=step, total=total)
                )
            )
        )

    def output(self, task_id: str, attempt: int, offset: int, data: bytes) -> None:
        self.send(pb.RunnerMessage(output=pb.OutputChunk(task_id=task_id, attempt=attempt, offset=offset, data=data)))

    def finish(
        self,
        task_id: str,
        attempt: int,
        state: int = cpb.TASK_STATE_SUCCEEDED,
        exit_code: int = 0,
        result: dict[str, Any] | None = None,
        error: str = "",
    ) -> None:
        self.send(pb.RunnerMessage(finished=finished_msg(task_id, attempt, state, exit_code, result, error)))

    def heartbeat(self, interval: float = 0.2) -> None:
        """Send a usage sample every interval (what keeps an executor alive)."""

        async def beat() -> None:
            while True:
                self.usage()
                await asyncio.sleep(interval)

        self._beat = asyncio.create_task(beat())

    def _stop_beat(self) -> None:
        if self._beat is not None:
            self._beat.cancel()

    async def close(self) -> None:
        """End the stream politely, then close the channel."""
        self._stop_beat()
        self._up.put_nowait(_END)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.channel.close(grace=1), 5)

    async def drop(self) -> None:
        """Vanish without ending the stream (as a killed runner would)."""
        self._stop_beat()
        if self.call is not None:
            self.call.cancel()
        await self.channel.close(grace=None)


def finished_msg(
    task_id: str,
    attempt: int,
    state: int = cpb.TASK_STATE_SUCCEEDED,
    exit_code: int = 0,
    result: dict[str, Any] | None = None,
    error: str = "",
) -> pb.AttemptFinished:
    return pb.AttemptFinished(
        task_id=task_id,
        attempt=attempt,
        state=state,
        exit_code=exit_code,
        result=convert.result_to_pb(result),
        error=error,
    )
