"""The runner's reconnect backoff across a fleet: runners whose sessions broke at the same instant (a controller
killed under all of them) come back spread out by the jitter, yet within about 1.5 times the outage."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
from dtask_runner.controller_session import BACKOFF_FIRST_S, backoff_delays

FLEET = 500
CAP_S = 10.0


def first_try_after(outage: float, rng: Callable[[], float]) -> float:
    """When a runner that lost its session at 0 next tries, once the controller is back at `outage`."""
    t = 0.0
    for d in backoff_delays(BACKOFF_FIRST_S, CAP_S, rng):
        t += d
        if t >= outage:
            return t
    raise AssertionError("unreachable")


def busiest_window(times: list[float], width: float) -> int:
    ts, j, peak = sorted(times), 0, 0
    for i, t in enumerate(ts):
        while ts[j] < t - width:
            j += 1
        peak = max(peak, i - j + 1)
    return peak


@pytest.mark.parametrize("outage", [0.5, 2.0, 6.0, 30.0])
def test_a_fleet_that_broke_together_comes_back_spread_and_soon(outage: float) -> None:
    rng = random.Random(outage).random
    tries = [first_try_after(outage, rng) for _ in range(FLEET)]
    assert busiest_window(tries, 0.1) <= FLEET * 0.3  # without jitter all 500 arrive in the same instant
    assert max(tries) - min(tries) >= min(outage, CAP_S) / 2
    assert max(tries) - outage <= min(max(1.0, 1.6 * outage), CAP_S)


def test_without_jitter_the_fleet_arrives_at_once() -> None:
    """What the spread above is measured against: a constant rng puts every runner on the same schedule."""
    tries = [first_try_after(2.0, lambda: 1.0) for _ in range(FLEET)]
    assert busiest_window(tries, 0.1) == FLEET
