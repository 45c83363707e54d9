"""Per-attempt liveness: an attempt is LOST once ITS lost_after_s has passed out of touch with its runner."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dtask_controller.engine import Engine


def limits(engine: Engine, executor: str) -> list[tuple[str, int, float]]:
    """(task id, attempt, lost_after_s) of every attempt running on the executor."""
    default = engine.settings.lost_after_s
    return [(tid, attempt, engine.store.spec(tid).lost_after_s or default)
            for tid, attempt in engine.scheduler.running_on(executor)]


def keep_for(engine: Engine) -> dict[str, float]:
    """How long each executor out of touch is kept before it is GONE: the longest limit of its attempts."""
    out: dict[str, float] = {}
    for name in engine.registry.names():
        if engine.registry.out_of_touch(name) is not None:
            out[name] = max((limit for _t, _a, limit in limits(engine, name)), default=0.0)
    return out


def lose_overdue(engine: Engine) -> bool:
    """Lose every attempt whose own limit has passed since its runner went out of touch; True when any was."""
    lost = False
    for name in engine.registry.names():
        away = engine.registry.out_of_touch(name)
        if away is None:
            continue
        for tid, attempt, limit in limits(engine, name):
            if away[1] < limit:
                continue
            give_up = engine.deaths.maybe_died(tid, attempt)
            reason = engine.deaths.message(tid) if give_up else f"executor {name} is gone (no session for {limit:g}s)"
            engine._apply(engine.scheduler.attempt_lost(tid, attempt, reason, give_up=give_up))
            lost = True
    return lost
