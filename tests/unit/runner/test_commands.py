"""The controller's commands as the runner's session takes them: each known one reaches the runner; an unknown
one (from a newer controller) is logged with its type and counted."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, cast

import pytest
from dtask.v1 import controller_pb2 as pb
from dtask_common.tls import TlsFiles
from dtask_runner.attempt_request import AttemptRequest
from dtask_runner.controller_session import ControllerSession
from dtask_runner.runner import Runner


class Calls:
    """Stands in for the Runner: records the session's calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def on_welcome(self, usage_interval_s: float, output_tail_bytes: int = 0) -> None:
        self.calls.append(("welcome", usage_interval_s))

    def on_assign(self, req: AttemptRequest) -> None:
        self.calls.append(("assign", req.task_id, req.attempt, req.spec.shell, req.gpu_ids))

    def on_cancel(self, task_id: str, attempt: int, reason: str) -> None:
        self.calls.append(("cancel", task_id, attempt, reason))

    def on_ack(self, task_id: str, attempt: int) -> None:
        self.calls.append(("ack", task_id, attempt))


def session(runner: Calls) -> ControllerSession:
    return ControllerSession(cast(Runner, runner), "localhost:1", TlsFiles.in_dir(Path("/nonexistent"), "runner-r1"))


def test_each_known_command_reaches_the_runner() -> None:
    r = Calls()
    s = session(r)
    s._handle(pb.ControllerMessage(welcome=pb.Welcome(usage_interval_s=2.0)))
    s._handle(pb.ControllerMessage(assign=pb.Assign(task_id="t", attempt=1, spec={"shell": "true"}, gpu_ids=[1])))
    s._handle(pb.ControllerMessage(cancel=pb.Cancel(task_id="t", attempt=1, reason="why")))
    s._handle(pb.ControllerMessage(ack=pb.Ack(task_id="t", attempt=1)))
    assert r.calls == [("welcome", 2.0), ("assign", "t", 1, "true", (1,)), ("cancel", "t", 1, "why"), ("ack", "t", 1)]
    assert not s.unknown_commands


def test_an_unknown_command_is_logged_with_its_type_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    r = Calls()
    s = session(r)
    newer = pb.ControllerMessage.FromString(b"\x4a\x00")  # field 9, which this runner's contract does not have
    with caplog.at_level(logging.WARNING, "dtask_runner.controller_session"):
        s._handle(newer)
        s._handle(newer)
        s._handle(pb.ControllerMessage())
    assert s.unknown_commands == {"field 9": 2, "empty": 1}
    assert "unknown command from the controller (field 9); 2 so far" in caplog.text
    assert r.calls == []


def test_a_batch_of_commands_is_taken_in_order_and_a_bad_one_not_at_all(caplog: pytest.LogCaptureFixture) -> None:
    r = Calls()
    s = session(r)
    ack = pb.ControllerMessage(ack=pb.Ack(task_id="t", attempt=1))
    cancel = pb.ControllerMessage(cancel=pb.Cancel(task_id="u", attempt=2, reason="why"))
    s._handle(pb.ControllerMessage(batch=pb.ControllerBatch(messages=[ack, cancel])))
    assert r.calls == [("ack", "t", 1), ("cancel", "u", 2, "why")]
    nested = pb.ControllerMessage(batch=pb.ControllerBatch(messages=[ack]))
    with caplog.at_level(logging.ERROR, "dtask_runner.controller_session"):
        s._handle(pb.ControllerMessage(batch=pb.ControllerBatch(messages=[cancel, nested])))
        s._handle(pb.ControllerMessage(batch=pb.ControllerBatch(messages=[pb.ControllerMessage(welcome=pb.Welcome())])))
    assert r.calls == [("ack", "t", 1), ("cancel", "u", 2, "why")]
    assert s.unknown_commands == {"bad batch": 2}
    assert "message 2 of a ControllerBatch of 2 is a batch" in caplog.text
