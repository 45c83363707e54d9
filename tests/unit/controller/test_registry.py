"""Executor liveness with a fake clock: dead after dead_after_s, gone after lost_after_s."""

from __future__ import annotations

from dtask_common.models import Capacity, ExecutorState, UsageSample
from dtask_controller.registry import Registry


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def connect(r: Registry, name: str = "a") -> int:
    token, _ = r.connect(
        name, capacity=Capacity(), labels={}, address="h:1", version="0.1.0", protocol_version=1, draining=False
    )
    return token


def test_dead_then_alive_then_gone() -> None:
    clock = Clock()
    r = Registry(3.0, 60.0, 60, clock)
    token = connect(r)
    assert r.state("a", 0) is ExecutorState.IDLE and r.state("a", 1) is ExecutorState.BUSY
    clock.t += 2.9
    assert r.check() == []
    clock.t += 0.2
    assert r.check() == [("a", ExecutorState.DEAD)]
    assert r.check() == []
    assert r.state("a", 0) is ExecutorState.DEAD and r.usage("a", 60).dead
    assert r.seen("a") is True
    assert r.state("a", 0) is ExecutorState.IDLE
    assert r.disconnect("a", token)
    clock.t += 59
    assert r.check() == [("a", ExecutorState.DEAD)]
    clock.t += 1.5
    assert r.check() == [("a", ExecutorState.GONE)]
    assert r.state("a", 0) is ExecutorState.GONE
    connect(r)
    assert r.state("a", 0) is ExecutorState.IDLE


def test_second_session_replaces_first() -> None:
    r = Registry(3.0, 60.0, 60, Clock())
    first = connect(r)
    second, replaced = r.connect(
        "a", capacity=Capacity(slots=2), labels={}, address="", version="", protocol_version=1, draining=False
    )
    assert replaced and second != first
    assert not r.disconnect("a", first)  # the old session ending changes nothing
    assert r.is_current("a", second)


def test_usage_history_is_bounded() -> None:
    r = Registry(3.0, 60.0, 5, Clock())
    connect(r)
    for i in range(12):
        r.add_usage("a", UsageSample(at=float(i), cpu_percent=i))
    u = r.usage("a", 3)
    assert [s.cpu_percent for s in u.history] == [9, 10, 11]
    assert len(r.usage("a", 60).history) == 5
    assert r.info("a", ()).last_usage == UsageSample(at=11.0, cpu_percent=11)


def test_drain_state() -> None:
    r = Registry(3.0, 60.0, 60, Clock())
    connect(r)
    r.set_draining("a", True)
    assert r.state("a", 1) is ExecutorState.DRAINING


def test_gone_counts_from_the_end_of_the_session() -> None:
    clock = Clock()
    r = Registry(3.0, 60.0, 60, clock)
    token = connect(r)
    clock.t += 50  # silent but still connected: dead, not gone
    assert r.check() == [("a", ExecutorState.DEAD)]
    r.disconnect("a", token)
    clock.t += 20
    assert r.check() == []
    clock.t += 40.5
    assert r.check() == [("a", ExecutorState.GONE)]


def test_connected_but_silent_for_twice_lost_after_is_gone() -> None:
    clock = Clock()
    r = Registry(3.0, 60.0, 60, clock)
    connect(r)
    clock.t += 121
    assert r.check() == [("a", ExecutorState.GONE)]
    assert not r.get("a").connected  # type: ignore[union-attr]
