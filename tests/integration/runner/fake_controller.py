"""A scripted Controller peer for runner tests: a real grpc.aio server over mTLS, driven from the test."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import grpc
from dtask.v1 import common_pb2 as cpb
from dtask.v1 import controller_pb2 as pb
from dtask.v1 import controller_pb2_grpc
from dtask_common import PROTOCOL_VERSION, __version__
from dtask_common.authz import peer_identity
from dtask_common.roles import CONTROLLER_POLICY
from dtask_common.server import new_server
from dtask_common.tls import TlsFiles, server_credentials


class FakeSession:
    """One Connect stream as the fake controller sees it."""

    def __init__(self, loop: asyncio.AbstractEventLoop, hello: pb.Hello, peer_name: str, auto_ack: bool):
        self.hello = hello
        self.peer_name = peer_name
        self.auto_ack = auto_ack
        self.inbox: queue.Queue[pb.RunnerMessage | None] = queue.Queue()
        self.seen: list[pb.RunnerMessage] = []  # a RunnerBatch's messages one by one
        self.batches: list[list[str]] = []  # the kinds in each RunnerBatch received, in order
        self._loop = loop
        self._outbox: asyncio.Queue[pb.ControllerMessage | None] = asyncio.Queue()
        self.ended = threading.Event()

    def send(self, msg: pb.ControllerMessage) -> None:
        self._loop.call_soon_threadsafe(self._outbox.put_nowait, msg)

    def assign(self, task_id: str, attempt: int, gpu_ids: tuple[int, ...] = (), **spec: Any) -> None:
        self.send(
            pb.ControllerMessage(
                assign=pb.Assign(task_id=task_id, attempt=attempt, spec=cpb.TaskSpec(**spec), gpu_ids=list(gpu_ids))
            )
        )

    def cancel(self, task_id: str, attempt: int, reason: str = "test") -> None:
        self.send(pb.ControllerMessage(cancel=pb.Cancel(task_id=task_id, attempt=attempt, reason=reason)))

    def ack(self, task_id: str, attempt: int) -> None:
        self.send(pb.ControllerMessage(ack=pb.Ack(task_id=task_id, attempt=attempt)))

    def end(self) -> None:
        """Close the stream from the controller's side."""
        self._loop.call_soon_threadsafe(self._outbox.put_nowait, None)

    def next(self, kind: str, pred: Callable[[Any], bool] = lambda m: True, timeout: float = 20.0) -> Any:
        """The next message of this kind (others are kept in `seen`) matching pred."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {kind} message; seen {[m.WhichOneof('msg') for m in self.seen][-20:]}")
            try:
                msg = self.inbox.get(timeout=remaining)
            except queue.Empty:
                continue
            if msg is None:
                raise ConnectionError(f"session ended while waiting for {kind}")
            if msg.WhichOneof("msg") == kind and pred(getattr(msg, kind)):
                return getattr(msg, kind)

    def output_of(
        self, task_id: str, attempt: int, until_finished: bool = True, timeout: float = 20.0
    ) -> tuple[bytes, Any]:
        """Concatenated output of an attempt (offsets checked), and its AttemptFinished."""
        data = b""
        deadline = time.monotonic() + timeout
        while True:
            msg = self.inbox.get(timeout=max(0.01, deadline - time.monotonic()))
            if msg is None:
                raise ConnectionError("session ended")
            kind = msg.WhichOneof("msg")
            if kind == "output" and msg.output.task_id == task_id and msg.output.attempt == attempt:
                assert msg.output.offset == len(data), (msg.output.offset, len(data))
                data += msg.output.data
            elif kind == "finished" and msg.finished.task_id == task_id and msg.finished.attempt == attempt:
                return data, msg.finished


class FakeController:
    """Serves Controller.Connect on 127.0.0.1 with the controller certificate, in a background thread."""

    def __init__(self, certs_dir: Path, *, port: int = 0, auto_ack: bool = True, usage_interval_s: float = 0.2):
        self.certs_dir = certs_dir
        self.port = port
        self.auto_ack = auto_ack
        self.usage_interval_s = usage_interval_s
        self.sessions: queue.Queue[FakeSession] = queue.Queue()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: grpc.aio.Server | None = None
        self._live: list[FakeSession] = []

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> FakeController:
        self._thread.start()
        fut: Future[int] = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        self.port = fut.result(10)
        return self

    async def _start(self) -> int:
        server = new_server(CONTROLLER_POLICY)
        controller_pb2_grpc.add_ControllerServicer_to_server(_Servicer(self), server)
        creds = server_credentials(TlsFiles.in_dir(self.certs_dir, "controller"))
        port = server.add_secure_port(f"127.0.0.1:{self.port}", creds)
        await server.start()
        self._server = server
        return port

    def stop(self) -> None:
        async def stop() -> None:
            for s in self._live:
                s.end()
            if self._server is not None:
                await self._server.stop(0.5)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def session(self, timeout: float = 20.0) -> FakeSession:
        return self.sessions.get(timeout=timeout)


class _Servicer(controller_pb2_grpc.ControllerServicer):
    def __init__(self, fake: FakeController):
        self.fake = fake

    async def Connect(self, request_iterator: Any, context: Any) -> Any:
        ident = peer_identity(context)
        first = await request_iterator.__anext__()
        assert first.WhichOneof("msg") == "hello"
        session = FakeSession(asyncio.get_running_loop(), first.hello, ident[1] if ident else "", self.fake.auto_ack)
        self.fake._live.append(session)

        async def read() -> None:
            try:
                async for sent in request_iterator:
                    parts = [sent]
                    if sent.WhichOneof("msg") == "batch":
                        session.batches.append([m.WhichOneof("msg") or "" for m in sent.batch.messages])
                        parts = list(sent.batch.messages)
                    for msg in parts:
                        session.seen.append(msg)
                        session.inbox.put(msg)
                        if session.auto_ack and msg.WhichOneof("msg") == "finished":
                            session.ack(msg.finished.task_id, msg.finished.attempt)
            except Exception:
                pass
            finally:
                session.inbox.put(None)
                session.ended.set()

        reader = asyncio.create_task(read())
        yield pb.ControllerMessage(
            welcome=pb.Welcome(
                controller_name="fake",
                version=__version__,
                protocol_version=PROTOCOL_VERSION,
                executor_name=session.peer_name,
                usage_interval_s=self.fake.usage_interval_s,
            )
        )
        self.fake.sessions.put(session)
        if session.auto_ack:
            for r in first.hello.unreported_results:
                yield pb.ControllerMessage(ack=pb.Ack(task_id=r.task_id, attempt=r.attempt))
        try:
            while True:
                msg = await session._outbox.get()
                if msg is None:
                    return
                yield msg
        finally:
            reader.cancel()
