"""Fixtures of the runner's integration tests: a fake controller a real runner connects to."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.runner.fake_controller import FakeController


@pytest.fixture
def fake(home: Path) -> Iterator[FakeController]:
    c = FakeController(home / "certs").start()
    try:
        yield c
    finally:
        c.stop()
