"""A runner session's dispatch: every RunnerMessage kind has its handler; any other message is logged and counted."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from dtask.v1 import controller_pb2 as pb
from dtask_common import convert
from dtask_common.config import Config
from dtask_controller import runner_session
from dtask_controller.core import ControllerCore
from dtask_controller.ownership import ReportGuard
from dtask_controller.queries import CoreOwners
from dtask_controller.runner_messages import Session
from dtask_controller.settings import Settings
from dtask_controller.store import SqliteStore


def test_the_dispatch_knows_every_kind_of_runner_message() -> None:
    for f in pb.RunnerMessage.DESCRIPTOR.oneofs_by_name["msg"].fields:
        msg = pb.RunnerMessage()
        getattr(msg, f.name).SetInParent()
        if f.name == "batch":  # taken apart before the dispatch, which gets its messages one by one
            assert list(convert.report_parts(msg)) == []
            continue
        try:
            convert.report_from_pb(msg)
        except convert.UnknownMessage:  # a kind the dispatch cannot take
            raise
        except ValueError:  # known, but an empty message of that kind holds a bad value
            pass


def test_a_message_the_session_does_not_take_is_logged_and_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def go() -> None:
        core = ControllerCore(SqliteStore(tmp_path / "c.db"), Settings.from_config(Config()))
        guard = ReportGuard("r1", CoreOwners(core))
        session = Session("r1", 1)
        with caplog.at_level(logging.WARNING, "dtask_controller"):
            runner_session._dispatch(core, session, guard, pb.RunnerMessage())  # none of the kinds set
            runner_session._dispatch(core, session, guard, pb.RunnerMessage(hello=pb.Hello()))  # a second Hello
        assert core.unexpected_messages == 2 and session.outbox.empty()
        assert [r.getMessage() for r in caplog.records] == [
            "executor r1 sent an unexpected None message; ignored",
            "executor r1 sent an unexpected hello message; ignored",
        ]
        core.store.close()

    asyncio.run(go())
