"""CLI unit-test fixtures: a CliRunner and a stand-in client injected into CliContext."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from click.testing import CliRunner, Result
from dtask_cli import cli
from dtask_cli.context import CliContext

from tests.unit.cli.fakes import FakeController


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeController]:
    f = FakeController()
    monkeypatch.setattr(CliContext, "client", lambda self: f)
    yield f


@pytest.fixture
def run(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Result]:
    home = tmp_path_factory.mktemp("home")

    def invoke(*args: str, input: str | None = None, color: bool = False) -> Result:
        runner = CliRunner()
        return runner.invoke(
            cli,
            list(args),
            input=input,
            color=color,
            env={"DTASK_HOME": str(home), "DTASK_CONTROLLER": None, "DTASK_CONFIG": None},
        )

    return invoke
