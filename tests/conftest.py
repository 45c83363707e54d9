"""Shared fixtures: a real CA and certificates, a DTASK_HOME per test, a running controller."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import Proc, copy_certs, make_certs, start_controller


@pytest.fixture(scope="session", autouse=True)
def private_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No test sees the caller's DTASK_HOME (`make` sets ./.dtask), config file or controller address."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DTASK_HOME", str(tmp_path_factory.mktemp("dtask-home")))
        mp.delenv("DTASK_CONFIG", raising=False)
        mp.delenv("DTASK_CONTROLLER", raising=False)
        yield


@pytest.fixture(scope="session")
def certs_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_certs(tmp_path_factory.mktemp("certs-template") / "certs")


@pytest.fixture(scope="session")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second, unrelated CA with its own operator and runner certificates."""
    return make_certs(tmp_path_factory.mktemp("other-ca") / "certs", runners=("r1",))


@pytest.fixture
def home(tmp_path: Path, certs_template: Path) -> Path:
    """A fresh DTASK_HOME holding a copy of the session's certificates."""
    return copy_certs(certs_template, tmp_path / "home")


@pytest.fixture
def controller(home: Path) -> Iterator[Proc]:
    """A real controller process on 127.0.0.1 with real certificates."""
    proc = start_controller(home)
    try:
        yield proc
    finally:
        proc.stop()
