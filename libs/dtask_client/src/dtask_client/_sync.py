"""The synchronous client: `Controller`, for scripts, notebooks, the CLI and `dtask shell`."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import grpc
from dtask.v1 import controller_pb2_grpc
from dtask_common import events as ev
from dtask_common.config import Config
from dtask_common.models import (
    FINISHED_STATES,
    ExecutorInfo,
    ExecutorUsage,
    Identity,
    QueueStatus,
    Task,
    TaskSpec,
    TaskState,
)
from dtask_common.server import client_options
from dtask_common.tls import channel_credentials

from dtask_client import _connection as c
from dtask_client.errors import Conflict, ControllerUnavailable, DtaskError, WaitTimeout, from_rpc_error

T = TypeVar("T")


class Controller:
    """A connection to a dtask controller; every method returns dtask_common models.

    Defaults match the `dtask` CLI: $DTASK_CONTROLLER (else localhost:50051), the certificates in
    $DTASK_HOME/certs and the operator certificate there. Errors are DtaskError subclasses.
    """

    def __init__(self, address: str | None = None, *, certs: str | Path | None = None,
                 cert: str | Path | None = None, key: str | Path | None = None,
                 timeout: float | None = None, config: Config | None = None):
        self._settings = c.resolve(address, certs=certs, cert=cert, key=key, timeout=timeout, config=config)
        self._channel = grpc.secure_channel(
            self._settings.address, channel_credentials(self._settings.files), options=client_options())
        self._stub = controller_pb2_grpc.ControllerStub(self._channel)
        #: Called with the reason when wait() or logs(follow=True) lost the controller and wait for it to return.
        self.on_reconnect: Callable[[str], None] | None = None

    # ---- plumbing ----

    @property
    def address(self) -> str:
        return self._settings.address

    @property
    def timeout(self) -> float:
        return self._settings.timeout

    def _call(self, call: c.Call[T], timeout: float | None = None) -> T:
        try:
            reply = getattr(self._stub, call.method)(call.request, timeout=timeout or self._settings.timeout)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc, self.address, call.method) from None
        return call.convert(reply)

    def _stream(self, method: str, request: Any, convert: Callable[[Any], T],
                timeout: float | None = None, quiet_deadline: bool = False) -> Iterator[T]:
        call = getattr(self._stub, method)(request, timeout=timeout)
        try:
            for msg in call:
                yield convert(msg)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.CANCELLED and call.cancelled():  # type: ignore[attr-defined]
                return
            if quiet_deadline and exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:  # type: ignore[attr-defined]
                return
            raise from_rpc_error(exc, self.address, method) from None
        finally:
            call.cancel()

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Controller:
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Controller({self.address!r}, cert={str(self._settings.files.cert)!r})"

    # ---- queries ----

    def whoami(self) -> Identity:
        """Role and name of this client's certificate, as the controller sees it."""
        return self._call(c.whoami())

    def executors(self, include_gone: bool = False) -> list[ExecutorInfo]:
        """Every executor (runner) the controller knows."""
        return self._call(c.executors(include_gone))

    def executor(self, name: str) -> ExecutorInfo:
        return self._call(c.executor(name))

    def finished(self) -> bool:
        """True when nothing is pending or running."""
        return self._call(c.finished())

    def queue(self) -> QueueStatus:
        """Task counts per state and whether dispatch is paused."""
        return self._call(c.queue())

    def resource_usage(self, executor: str | None = None, history: int = 60) -> list[ExecutorUsage]:
        """Latest usage sample, dead flag and history of each executor."""
        return self._call(c.resource_usage(executor, history))

    def tasks(self, states: Iterable[TaskState | str] | None = None, tag: str | None = None,
              executor: str | None = None, name_contains: str | None = None) -> list[Task]:
        """Every task matching the filters (all pages)."""
        wanted = c.states_of(states)
        out: list[Task] = []
        token = ""
        while True:
            page, token = self._call(c.list_tasks(wanted, tag, executor, name_contains, token))
            out.extend(page)
            if not token:
                return out

    def tasks_pending(self) -> list[Task]:
        return self.tasks([TaskState.PENDING])

    def tasks_running(self) -> list[Task]:
        return self.tasks([TaskState.RUNNING])

    def tasks_finished(self) -> list[Task]:
        return self.tasks(FINISHED_STATES)

    def task(self, task_id: str) -> Task:
        return self._call(c.task(task_id))

    # ---- commands ----

    def submit(self, specs: TaskSpec | Iterable[TaskSpec] | str | Path) -> list[str]:
        """Queue a spec, a list of specs or a TOML task file (all or nothing); returns the new ids."""
        return self._call(c.submit(c.specs_of(specs)))

    def add_task(self, spec: TaskSpec | str | list[str] | None = None, /, **fields: Any) -> str:
        """Queue one task, from a TaskSpec or from TaskSpec fields (command=... for a shell string)."""
        return self.submit(c.spec_from_fields(spec, fields))[0]

    def add_tasks(self, specs: Iterable[TaskSpec | dict[str, Any]] | str | Path) -> list[str]:
        """Queue several tasks (TaskSpecs, dicts of TaskSpec fields, or a task file path)."""
        if isinstance(specs, (str, Path)):
            return self.submit(specs)
        return self.submit([s if isinstance(s, TaskSpec) else c.spec_from_fields(None, s) for s in specs])

    def cancel(self, task_id: str) -> Task:
        return self._call(c.cancel(task_id))

    def retry(self, task_id: str) -> Task:
        return self._call(c.retry(task_id))

    def drain(self, name: str, undrain: bool = False) -> ExecutorInfo:
        return self._call(c.drain(name, undrain))

    def pause(self) -> QueueStatus:
        return self._call(c.pause())

    def resume(self) -> QueueStatus:
        return self._call(c.resume())

    # ---- streams ----

    def logs(self, task_id: str, attempt: int = 0, follow: bool = False) -> Iterator[bytes]:
        """An attempt's output (0: the latest attempt); with follow, until the attempt ends.

        Following a task that has not started yet waits for its dispatch first.
        """
        if not follow:
            self.task(task_id)  # NotFound before streaming
            return self._stream("GetTaskOutput", c.output_request(task_id, attempt, follow), c.output_data)
        return self._follow(task_id, attempt)

    def _follow(self, task_id: str, attempt: int) -> Iterator[bytes]:
        """Follow one attempt to its end, across controller restarts (output is not repeated)."""
        next_offset = 0
        started = False
        while True:
            try:
                for number, offset, data in self._stream("GetTaskOutput", c.output_request(task_id, attempt, True),
                                                         c.output_piece):
                    attempt = attempt or number  # stay with the attempt being followed
                    started = True
                    new = c.unseen(offset, data, next_offset)
                    next_offset = max(next_offset, offset + len(data))
                    if new:
                        yield new
                if c.attempt_over(self.task(task_id), attempt):
                    return
            except Conflict:
                if started or self.task(task_id).state is not TaskState.PENDING:
                    raise
                for event in self.watch(include_usage=False, include_progress=False):
                    if c.dispatched(event, task_id):
                        break
                continue
            except ControllerUnavailable as exc:
                if not started:
                    raise
                self._reconnect(exc, None)
                continue
            # the stream ended while the attempt runs on: the controller stopped; follow on when it is back
            self._reconnect(ControllerUnavailable(f"the controller at {self.address} ended the output stream"), None)

    def _reconnect(self, lost: DtaskError, deadline: float | None) -> None:
        """Block until the controller answers again (it keeps everything across a restart)."""
        if self.on_reconnect is not None:
            self.on_reconnect(lost.message)
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise lost
            try:
                grpc.channel_ready_future(self._channel).result(timeout=remaining)
                self._call(c.finished(), timeout=min(self.timeout, remaining or self.timeout))
                return
            except grpc.FutureTimeoutError:
                raise lost from None
            except ControllerUnavailable:
                time.sleep(0.5)  # answered the connect but not the call (still starting): try again shortly

    def watch(self, include_usage: bool = True, include_progress: bool = True,
              timeout: float | None = None) -> Iterator[ev.WatchEvent]:
        """A snapshot, then every change, until the iterator is closed (or timeout seconds passed)."""
        return self._stream("Watch", c.watch_request(include_usage, include_progress), c.event_of,
                            timeout, quiet_deadline=True)

    def wait(self, ids: Iterable[str] | None = None, timeout: float | None = None,
             on_change: Callable[[list[Task]], None] | None = None) -> list[Task]:
        """Block until the given tasks (default: every task) are finished; returns them.

        Raises WaitTimeout after timeout seconds. on_change is called with the watched tasks
        whenever one of them changes.
        """
        wanted = [str(i) for i in ids] if ids is not None else None
        deadline = None if timeout is None else time.monotonic() + timeout
        connected = False
        while True:
            state = c.WaitState(wanted)
            try:
                remaining = None if deadline is None else max(0.001, deadline - time.monotonic())
                events = self._stream("Watch", c.watch_request(False, on_change is not None), c.event_of, remaining)
                try:
                    for event in events:
                        state.apply(event)
                        state.check()
                        connected = connected or state.ready
                        if on_change is not None and state.ready:
                            on_change(state.watched())
                        if state.done():
                            return state.watched()
                finally:
                    events.close()  # type: ignore[attr-defined]
                lost = ControllerUnavailable(
                    f"the controller at {self.address} ended the watch stream before the tasks finished")
            except ControllerUnavailable as exc:
                if exc.code == "DEADLINE_EXCEEDED" and deadline is not None and time.monotonic() >= deadline - 0.05:
                    raise WaitTimeout(f"tasks still unfinished after {timeout:g} s", "DEADLINE_EXCEEDED") from None
                lost = exc
            if not connected:
                raise lost
            # the controller went away mid-wait (a restart loses nothing): wait on once it is back
            try:
                self._reconnect(lost, deadline)
            except ControllerUnavailable:
                if deadline is not None and time.monotonic() >= deadline - 0.05:
                    raise WaitTimeout(f"tasks still unfinished after {timeout:g} s", "DEADLINE_EXCEEDED") from None
                raise
