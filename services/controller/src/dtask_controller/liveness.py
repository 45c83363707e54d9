"""Liveness: executors dead, then gone, when silent; an attempt is LOST once ITS lost_after_s has passed."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from dtask_common import events as ev
from dtask_common.models import ExecutorState

if TYPE_CHECKING:
    from dtask_controller.core import ControllerCore

log = logging.getLogger(__name__)


def limits(core: ControllerCore, executor: str) -> list[tuple[str, int, float]]:
    """(task id, attempt, lost_after_s) of every attempt running on the executor."""
    default = core.settings.lost_after_s
    return [
        (tid, attempt, core.store.spec(tid).lost_after_s or default)
        for tid, attempt in core.scheduler.running_on(executor)
    ]


def keep_for(core: ControllerCore) -> dict[str, float]:
    """How long each executor out of touch is kept before it is GONE: the longest limit of its attempts."""
    out: dict[str, float] = {}
    for name in core.registry.names():
        if core.registry.out_of_touch(name) is not None:
            out[name] = max((limit for _t, _a, limit in limits(core, name)), default=0.0)
    return out


def lose_overdue(core: ControllerCore) -> bool:
    """Lose every attempt whose own limit has passed since its runner went out of touch; True when any was."""
    lost = False
    for name in core.registry.names():
        away = core.registry.out_of_touch(name)
        if away is None:
            continue
        for tid, attempt, limit in limits(core, name):
            if away[1] < limit:
                continue
            give_up = core.deaths.maybe_died(tid, attempt)
            reason = core.deaths.message(tid) if give_up else f"executor {name} is gone (no session for {limit:g}s)"
            core.apply(core.scheduler.attempt_lost(tid, attempt, reason, give_up=give_up))
            lost = True
    return lost


def check(core: ControllerCore) -> None:
    """Lose overdue attempts, then mark silent executors dead and long-gone ones gone (their attempts LOST)."""
    if lose_overdue(core):
        core.kick()
    for name, state in core.registry.check(keep_for(core)):
        if state is ExecutorState.DEAD:
            log.warning("executor %s dead: no message for %gs", name, core.settings.dead_after_s)
            core.scheduler.set_online(name, False)  # no new work for a runner out of touch; its attempts stay running
            if core.fanout.active:
                core.fanout.publish(core.executor_event(ev.ExecutorEventKind.DEAD, name))
                core.publish_stale(name)
            continue
        log.warning("executor %s gone: no session for %gs; its attempts are lost", name, core.settings.lost_after_s)
        s = core.sessions.pop(name, None)
        if s is not None:
            s.send(None)
        core.apply(
            core.scheduler.executor_gone(
                name, f"executor {name} is gone (no session for {core.settings.lost_after_s:g}s)"
            )
        )
        if core.fanout.active:
            core.fanout.publish(core.executor_event(ev.ExecutorEventKind.GONE, name))
        core.kick()
