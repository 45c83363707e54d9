"""Fixtures of the runner's integration tests: a fake controller a real runner connects to, and each containment."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from dtask_runner import cgroup
from dtask_runner.containment import CgroupContainment, Containment, SweepContainment

from tests.integration.runner.fake_controller import FakeController


@pytest.fixture
def fake(home: Path) -> Iterator[FakeController]:
    c = FakeController(home / "certs").start()
    try:
        yield c
    finally:
        c.stop()


def cgroup_containment(name: str) -> CgroupContainment:
    try:
        return CgroupContainment.create(name)
    except cgroup.CgroupError as exc:
        pytest.skip(f"cgroup mode needs a writable cgroup2 group here: {exc}")


@pytest.fixture(params=["cgroup", "sweep"])
def containment(request: pytest.FixtureRequest) -> Iterator[Containment]:
    c: Containment = (
        cgroup_containment(f"test-{os.getpid()}")
        if request.param == "cgroup"
        else SweepContainment("the test asks for it")
    )
    try:
        yield c
    finally:
        c.close()
