"""Fixtures for controller integration tests: a controller with short liveness timeouts, stubs per role."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import Proc, free_port_range, start_dtask

FAST = ("--set", "controller.dead_after_s=0.6", "--set", "controller.lost_after_s=1.5")


def start_fast_controller(home: Path, *extra: str, port_range: tuple[int, int] | None = None) -> Proc:
    lo, hi = port_range or free_port_range()
    return start_dtask([*FAST, "controller", "--host", "127.0.0.1", "--port-range", f"{lo}-{hi}", *extra], home)


@pytest.fixture
def ctl(home: Path) -> Iterator[Proc]:
    """A real controller process (dead after 0.6 s, gone after 1.5 s)."""
    proc = start_fast_controller(home)
    try:
        yield proc
    finally:
        proc.stop()
