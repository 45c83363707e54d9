"""Runner reports, one handler each: connect (Hello), result, output, progress, usage, drain, refusal, disconnect."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from dtask_common import events as ev
from dtask_common.metric_series import MetricSeries
from dtask_common.models import AttemptResult, MetricPoint, Progress, Revoked, RevokedCmd, TaskState, UsageSample
from dtask_common.progress import newest

from dtask_controller import liveness, reconcile
from dtask_controller.placement import with_paths
from dtask_controller.runner_messages import AckCmd, Hello, Session, WelcomeCmd

if TYPE_CHECKING:
    from dtask_controller.core import ControllerCore

log = logging.getLogger(__name__)


def revoked(core: ControllerCore, fresh: list[Revoked]) -> None:
    """Tell every runner of certificates newly revoked: their own service refuses them from now on."""
    cmd = RevokedCmd(tuple(fresh))
    for session in core.sessions.values():
        session.send(cmd)


def connected(core: ControllerCore, hello: Hello) -> Session:
    """Register a session, send Welcome, reconcile what the runner reports; returns the session."""
    name = hello.name
    token, replaced = core.registry.connect(
        name,
        capacity=hello.capacity,
        labels=hello.labels,
        address=hello.address,
        version=hello.version,
        protocol_version=hello.protocol_version,
        draining=hello.draining,
        containment=hello.containment,
        path_names=hello.path_names,
    )
    old = core.sessions.get(name)
    session = core.sessions[name] = Session(name, token, hello.instance_id)
    if old is not None:
        if old.instance_id and hello.instance_id and old.instance_id != hello.instance_id:
            old.ended_because = (
                f"another runner process connected as executor {name} from {hello.address or '?'} and "
                f"replaced this one; two runners cannot share a name: start one of them with another --name"
            )
            log.warning(
                "executor %s: a different runner process took over the name (from %s)", name, hello.address or "?"
            )
        old.send(None)
    labels = with_paths(hello.labels, hello.path_names)
    core.scheduler.executor_up(name, hello.capacity, labels, draining=core.registry.draining(name))
    with core.change():
        core.store.upsert_executor(name, core.clock(), hello.address, hello.version, hello.capacity, hello.labels)
        stale = {tid for tid, _attempt in core.scheduler.running_on(name)}  # (one taken back has its event)
        offsets = reconcile.reconnect(core, hello, session, lambda result: finished(core, name, result))
        # First down the stream (what the change tells the runner goes after it, at commit).
        session.send(
            WelcomeCmd(
                core.settings.name,
                name,
                core.settings.usage_interval_s,
                offsets,
                output_tail_bytes=core.tails.limit,
                revoked=core.revoked(),
            )
        )
        core.publish(lambda: core.executor_event(ev.ExecutorEventKind.UP, name))
        core.publish_stale(name, stale)
    log.info(
        "executor %s up%s: %d slots, cpus %g, memory %d MiB, gpus %s, labels %s, paths %s, version %s, at %s",
        name,
        " (replaced its previous session)" if replaced else "",
        hello.capacity.slots,
        hello.capacity.cpus,
        hello.capacity.memory_mb,
        list(hello.capacity.gpus),
        hello.labels or {},
        ",".join(hello.path_names) or "none",
        hello.version or "?",
        hello.address or "?",
    )
    core.kick()
    return session


def disconnected(core: ControllerCore, session: Session) -> None:
    if not core.registry.disconnect(session.name, session.token):
        return
    if core.sessions.get(session.name) is session:
        del core.sessions[session.name]
    core.scheduler.set_online(session.name, False)
    core.tails.give_up(session.name)
    log.info(
        "executor %s disconnected; its attempts keep running for up to %gs",
        session.name,
        max(core.settings.lost_after_s, liveness.keep_for(core).get(session.name, 0.0)),
    )
    if core.fanout.active:
        core.fanout.publish(core.executor_event(ev.ExecutorEventKind.UPDATED, session.name))
        core.publish_stale(session.name)


def arrived(
    core: ControllerCore, session: Session, apply: Callable[[], None], failed: Callable[[BaseException], None]
) -> None:
    """A runner's message (one, or a batch's, in order): applied with every other one that arrives in this
    turn of the event loop, in one change (one store commit, before anyone is told); failed(exc) when it
    cannot be committed. Skipped when the session was replaced meanwhile (the runner reports it again)."""

    def current_only() -> None:
        if core.registry.is_current(session.name, session.token):
            apply()

    core.reports_in.add(session, current_only, failed)


def apply_arrived(core: ControllerCore) -> None:
    """Apply what has arrived now, without waiting for the event loop's next turn."""
    core.reports_in.flush()


def end_after_commit(core: ControllerCore, session: Session) -> None:
    """End the session once the open change has committed (after what it tells the runner)."""
    core.after(lambda: session.send(None))


def seen(core: ControllerCore, session: Session) -> bool:
    """A message from a runner; False when the session was replaced (ignore the message)."""
    if not core.registry.is_current(session.name, session.token):
        return False
    if core.registry.seen(session.name):
        log.info("executor %s alive again", session.name)
        core.scheduler.set_online(session.name, True)
        core.kick()
        if core.fanout.active:
            core.fanout.publish(core.executor_event(ev.ExecutorEventKind.UPDATED, session.name))
            core.publish_stale(session.name)
    return True


def usage(core: ControllerCore, name: str, sample: UsageSample) -> None:
    if sample.attempts:  # a runner speaks only for its own attempts: the usage of any other is dropped
        own = set(core.scheduler.running_on(name))
        kept = tuple(a for a in sample.attempts if (a.task_id, a.attempt) in own)
        if len(kept) != len(sample.attempts):
            sample = dataclasses.replace(sample, attempts=kept)
    core.registry.add_usage(name, sample)
    if core.fanout.active:  # published at the next usage tick (lifecycle.py), or before any other event
        core.fanout.defer(ev.UsageEvent(name, sample))


def progress(
    core: ControllerCore,
    name: str,
    task_id: str,
    attempt: int,
    p: Progress | None,
    metrics: tuple[MetricPoint, ...] = (),
) -> None:
    sched = core.scheduler
    if sched.current_attempt(task_id) != attempt or sched.state(task_id) is not TaskState.RUNNING:
        return
    if p is not None and newest(core.progress.get(task_id), p) is p:
        core.progress[task_id] = p
        core.dirty_progress.add(task_id)
        core.live.drop(task_id)  # the stored progress is the flush's: the task's end reads it from the store
    else:
        p = None  # none, or older than what was reported already
    if metrics:
        series = core.metrics.get(task_id)
        if series is None:
            series = core.metrics[task_id] = MetricSeries()
        series.add(metrics)
    if p is not None or metrics:
        core.publish_now(lambda: ev.ProgressEvent(task_id, attempt, p, metrics))


def output(core: ControllerCore, task_id: str, attempt: int, offset: int, data: bytes) -> None:
    core.tails.append(task_id, attempt, offset, data)


def refused(core: ControllerCore, name: str, task_id: str, attempt: int, reason: str) -> None:
    """The runner will not run an assignment: queued again without using a retry."""
    if (task_id, attempt) not in core.scheduler.running_on(name):
        log.warning(
            "executor %s refused attempt %d of task %s, which is not assigned to it; ignored", name, attempt, task_id
        )
        return
    log.warning("executor %s refused attempt %d of task %s: %s", name, attempt, task_id, reason)
    # It is fuller than the controller counts: one slot stays taken until it reports a result or reconnects.
    core.scheduler.hold(name, ("", 0), None, ())
    core.apply(
        core.scheduler.attempt_lost(task_id, attempt, f"executor {name} refused it: {reason}", never_started=True)
    )
    core.kick()


def runner_draining(core: ControllerCore, name: str, draining: bool) -> None:
    """The runner drains (or stops draining) of its own accord."""
    now = core.registry.set_draining(name, draining, by_runner=True)
    if core.scheduler.known_executor(name):
        core.scheduler.set_draining(name, now)
    log.info("executor %s %s", name, "drains (its own request)" if draining else "no longer drains itself")
    core.kick()


def finished(core: ControllerCore, name: str, r: AttemptResult) -> None:
    """Record a result (also of a superseded attempt), apply it, and ack it once committed."""
    session = core.sessions.get(name)
    if r.task_id not in core.scheduler and not core.store.has_task(r.task_id):
        log.warning(
            "executor %s reported attempt %d of unknown task %r; acknowledged and ignored", name, r.attempt, r.task_id
        )
        if session is not None:
            with core.change():
                core.after(lambda: session.send(AckCmd(r.task_id, r.attempt)))
        return
    core.scheduler.unhold(name, (r.task_id, r.attempt))
    core.scheduler.unhold(name, ("", 0))
    with core.change():
        reconcile.take_back(core, name, r.task_id, r.attempt)  # a LOST attempt's result, nothing newer
        if core.scheduler.current_attempt(r.task_id) == r.attempt:
            core.deaths.ended(r.task_id)
            core.tails.await_rest(r.task_id, r.attempt, r.output_bytes, name)
        finished_at = r.finished_at or core.clock()
        core.store.finish_attempt(
            r.task_id,
            r.attempt,
            r.state,
            finished_at=finished_at,
            exit_code=r.exit_code,
            signal=r.signal,
            error=r.error,
            result=r.result,
            peak_rss_bytes=r.peak_rss_bytes,
            cpu_time_s=r.cpu_time_s,
            started_at=r.started_at,
        )
        core.live.attempt_ended(r, finished_at)
        core.apply(core.scheduler.attempt_finished(r.task_id, r.attempt, r.state, r.error), result=r.result)
        if session is not None:
            core.after(lambda: session.send(AckCmd(r.task_id, r.attempt)))
        core.dispatch()  # refill the freed slot within the same commit
        core.mark_busy((name,))


def rejected(core: ControllerCore, reason: str = "") -> None:
    """A report or Hello claim on an attempt not dispatched to the runner that sent it (not applied)."""
    core.rejected_reports += 1
    core.tally.reject(reason or "other")


def unexpected(core: ControllerCore, name: str, kind: str | None) -> None:
    """A message a session does not take (a second Hello, or one this controller does not know): ignored."""
    core.unexpected_messages += 1
    log.warning("executor %s sent an unexpected %s message; ignored", name, kind)
