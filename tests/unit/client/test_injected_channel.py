"""The shells over an injected channel: a scripted stand-in for the controller, no network."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from dtask.v1 import common_pb2 as cpb
from dtask.v1 import controller_pb2 as pb
from dtask_client import AsyncController, Controller, ControllerUnavailable
from dtask_common.config import Config
from dtask_common.models import TaskSpec


class FakeRpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str):
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


DOWN = FakeRpcError(grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses; connection refused")


@dataclass
class FakeChannel:
    """Answers each method from a script of replies and errors; records (method, wait_for_ready) per send."""

    script: dict[str, list[Any]]
    sent: list[tuple[str, bool]] = field(default_factory=list)
    closed: bool = False
    asynchronous: bool = False

    def unary_unary(self, path: str, **_: object) -> Callable[..., Any]:
        name = path.rsplit("/", 1)[1]

        def send(request: object, timeout: float | None = None, wait_for_ready: bool | None = None) -> Any:
            self.sent.append((name, bool(wait_for_ready)))
            outcome = self.script[name].pop(0)
            if isinstance(outcome, Exception):
                raise outcome
            return outcome

        async def send_async(request: object, **kw: Any) -> Any:
            return send(request, **kw)

        return send_async if self.asynchronous else send

    def close(self) -> None:
        self.closed = True


def identity() -> pb.Identity:
    return pb.Identity(role="operator", name="alice")


def client(channel: FakeChannel) -> Controller:
    return Controller("ctrl.test:50051", channel=channel, config=Config())


def test_a_read_rides_out_a_lost_controller_once_it_was_reached() -> None:
    fake = FakeChannel(
        {
            "WhoAmI": [identity()],
            "ListTasks": [DOWN, DOWN, pb.ListTasksResponse(tasks=[cpb.Task(id="1", state=cpb.TASK_STATE_PENDING)])],
        }
    )
    c = client(fake)
    assert c.whoami().name == "alice"
    assert [t.id for t in c.tasks()] == ["1"]
    assert fake.sent == [("WhoAmI", False), ("ListTasks", False), ("ListTasks", True), ("ListTasks", True)]
    c.close()
    assert not fake.closed  # a channel given ready stays the caller's


def test_first_contact_fails_fast_and_a_submission_is_sent_once() -> None:
    fake = FakeChannel({"ListTasks": [DOWN], "WhoAmI": [identity()], "SubmitTasks": [DOWN]})
    c = client(fake)
    with pytest.raises(ControllerUnavailable, match="cannot reach the controller at ctrl.test:50051"):
        c.tasks()
    c.whoami()
    with pytest.raises(ControllerUnavailable):
        c.submit(TaskSpec(shell="true"))
    assert fake.sent == [("ListTasks", False), ("WhoAmI", False), ("SubmitTasks", False)]


def test_a_channel_factory_is_called_once_and_its_channel_closed() -> None:
    made: list[FakeChannel] = []

    def factory() -> FakeChannel:
        made.append(FakeChannel({"WhoAmI": [identity()]}))
        return made[-1]

    with Controller("ctrl.test:50051", channel=factory, config=Config()) as c:  # type: ignore[arg-type]
        assert c.whoami().role == "operator"
        assert repr(c) == "Controller('ctrl.test:50051')"  # no certificate read
    assert len(made) == 1 and made[0].closed


def test_the_async_client_over_an_injected_channel() -> None:
    fake = FakeChannel(
        {"WhoAmI": [identity()], "IsFinished": [DOWN, pb.IsFinishedResponse(finished=True)]}, asynchronous=True
    )

    async def scenario() -> None:
        c = AsyncController("ctrl.test:50051", channel=fake, config=Config())  # type: ignore[arg-type]
        assert (await c.whoami()).name == "alice"
        assert await c.finished() is True
        await c.close()

    asyncio.run(scenario())
    assert fake.sent == [("WhoAmI", False), ("IsFinished", False), ("IsFinished", True)]
