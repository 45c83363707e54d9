"""The controller core: its state, and the one rule of every change: decide, commit, tell runners, publish."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, assert_never

from dtask_common import events as ev
from dtask_common.metric_series import MetricSeries
from dtask_common.models import Progress, Revoked, Task, TaskSpec, TaskState

from dtask_controller import queries, recovery
from dtask_controller.effects import CancelAttempt, Dispatch, Effect, Finished, Requeued, Stale
from dtask_controller.fanout import Fanout
from dtask_controller.group_commit import GroupCommit
from dtask_controller.live_tasks import LiveTasks
from dtask_controller.output import OutputTails
from dtask_controller.placement import with_paths
from dtask_controller.poison import Deaths
from dtask_controller.registry import Registry
from dtask_controller.runner_messages import AssignCmd, CancelCmd, Command, Session
from dtask_controller.scheduler import Scheduler
from dtask_controller.settings import Settings
from dtask_controller.store import Store
from dtask_controller.tally import Tally

if TYPE_CHECKING:
    from dtask_controller.metrics import ControllerMetrics

log = logging.getLogger(__name__)


class ControllerCore:
    """Every state change goes: the scheduler decides -> the store commits -> then runners are told and
    watchers see it. Commands (commands.py) and runner reports (reports.py) change it only through
    change(), after(), publish() and apply(); queries.py reads it."""

    def __init__(self, store: Store, settings: Settings, clock: Callable[[], float] = time.time):
        self.store = store
        self.settings = settings
        self.clock = clock
        self.scheduler = Scheduler()
        self.registry = Registry(settings.dead_after_s, settings.lost_after_s, settings.usage_history, clock)
        self.fanout = Fanout(clock, settings.watch_queue)
        self.tails = OutputTails(settings.output_tail_bytes)
        self.deaths = Deaths(settings.poison_after)
        self.sessions: dict[str, Session] = {}
        self.progress: dict[str, Progress] = {}
        self.dirty_progress: set[str] = set()  # progress not yet written to the store
        self.metrics: dict[str, MetricSeries] = {}  # live metrics of running attempts (stored when they end)
        self.finished_counts: dict[TaskState, int] = {}
        self.task_waiters: dict[str, asyncio.Event] = {}
        self.live = LiveTasks()  # first attempts running as committed: their events read no store
        self.rejected_reports = 0  # runner reports and Hello claims on attempts not dispatched to that runner
        self.unexpected_messages = 0  # runner messages of a kind a session does not take (ignored)
        self.tally = Tally()  # counts for the metrics
        self.prom: ControllerMetrics | None = None  # set by enable_metrics: histograms observed at the event
        self._arrivals: list[str] | None = None  # tasks that became ready since the last dispatch round
        self._post: list[Callable[..., Any]] = []
        self._busy: set[str] = set()  # executors whose ExecutorEvent is due once the open change commits
        self._depth = 0
        self._dispatch_scheduled = False
        self._resyncing = False
        self.reports_in = GroupCommit(self.change)  # runner reports arriving together: one commit
        self.revoked: Callable[[], tuple[Revoked, ...]] = tuple  # every revoked certificate (set by main)

    def enable_metrics(self, metrics: ControllerMetrics) -> None:
        """Observe dispatch latency, queue wait and store commits into metrics from now on."""
        self.prom = metrics
        self._arrivals = self.scheduler.track_ready()
        self.store.observe_commits(metrics.store_commit.observe)

    # ---- the commit-then-tell rule ----

    @contextlib.contextmanager
    def change(self) -> Iterator[None]:
        """A transaction; actions queued with after() run only once it has committed."""
        self._depth += 1
        try:
            with self.store.transaction():
                yield
        except BaseException:
            self._depth -= 1
            if self._depth == 0:
                self._post.clear()
                self._busy.clear()
                if not self._resyncing:
                    self._resync()  # the scheduler may hold changes the store rolled back
            raise
        self._depth -= 1
        if self._depth == 0:
            post, self._post = self._post, []
            for action in post:
                action()

    def after(self, action: Callable[..., Any]) -> None:
        self._post.append(action)

    def publish(self, make: Callable[[], ev.EventBody]) -> None:
        """Publish after commit; the event body is only built when someone watches."""
        self.after(lambda: self.fanout.publish(make()) if self.fanout.active else None)

    def publish_now(self, make: Callable[[], ev.EventBody]) -> None:
        """Publish a change that is not committed to the store (liveness, usage, progress) when someone watches."""
        if self.fanout.active:
            self.fanout.publish(make())

    def task_event(self, kind: ev.TaskEventKind, task_id: str, task: Task | None = None) -> None:
        """Publish the task as the open change leaves it: `task` when the caller knows it exactly (it is not
        changed afterwards), else read from the store after the commit."""
        if task is None:
            self.live.drop(task_id)  # changed in a way only the store knows
            self.publish(lambda: ev.TaskEvent(kind, queries.task(self, task_id)))
        else:
            self.publish(lambda: ev.TaskEvent(kind, queries.overlay(self, replace(task, attempts=list(task.attempts)))))
        if task_id in self.task_waiters:
            self.after(lambda: self.task_waiters.pop(task_id).set() if task_id in self.task_waiters else None)

    def executor_event(self, kind: ev.ExecutorEventKind, name: str) -> ev.ExecutorEvent:
        return ev.ExecutorEvent(kind, queries.executor(self, name))

    def publish_stale(self, name: str, only: set[str] | None = None) -> None:
        """The executor went out of touch or came back: its running tasks' stale marker changed."""
        for tid, _attempt in self.scheduler.running_on(name):
            if only is not None and tid not in only:
                continue
            make = functools.partial(self._updated, tid)
            if self._depth:
                self.publish(make)
            else:
                self.publish_now(make)

    def _updated(self, task_id: str) -> ev.TaskEvent:
        return ev.TaskEvent(ev.TaskEventKind.UPDATED, queries.task(self, task_id))

    def kick(self) -> None:
        """A dispatch round soon (once per event-loop turn however often it is asked for)."""
        if not self._dispatch_scheduled:
            self._dispatch_scheduled = True
            asyncio.get_running_loop().call_soon(self.dispatch)

    def _resync(self) -> None:
        """A commit failed (a full disk?) after the scheduler had moved on: rebuild it from the store."""
        log.warning("a store commit failed; rebuilding the queue from the store")
        self._resyncing = True
        self.live.clear()
        try:
            self.scheduler = Scheduler()
            if self.prom is not None:
                self._arrivals = self.scheduler.track_ready()
            recovery.reload(self)
            for name in self.sessions:
                rec = self.registry.get(name)
                if rec is not None and rec.connected:
                    labels = with_paths(rec.labels, rec.path_names)
                    self.scheduler.executor_up(name, rec.capacity, labels, draining=rec.draining)
        finally:
            self._resyncing = False
        self.reports_in = GroupCommit(self.change)  # runner reports arriving together: one commit
        with contextlib.suppress(RuntimeError):  # no event loop (a test driving the core directly)
            self.kick()

    # ---- effects of the scheduler ----

    def apply(self, effects: Sequence[Effect], result: dict[str, Any] | None = None) -> None:
        """Commit what the scheduler decided; runners and watchers hear of it once it is committed."""
        if not effects:
            return
        now = self.clock()
        with self.change():
            for e in effects:
                match e:
                    case Finished():
                        self._finished(e, now, result)
                    case Requeued():
                        self._requeued(e, now)
                    case CancelAttempt():
                        self.after(
                            lambda e=e: self.send(
                                e.executor, CancelCmd(e.task_id, e.attempt, "cancelled by an operator")
                            )
                        )
                    case Stale():
                        self.after(
                            lambda e=e: log.info(
                                "task %s attempt %d report ignored: %s", e.task_id, e.attempt, e.reason
                            )
                        )
                    case Dispatch():  # pragma: no cover - dispatches come from dispatch()
                        raise TypeError("dispatch effects are applied by dispatch()")
                    case _:
                        assert_never(e)

    def _finished(self, e: Finished, now: float, result: dict[str, Any] | None) -> None:
        if e.attempt and e.attempt_state is TaskState.LOST:
            self.store.finish_attempt(e.task_id, e.attempt, TaskState.LOST, finished_at=now, error=e.error)
        self.store.set_task(e.task_id, e.state, error=e.error, result=result if e.attempt else None)
        self.finished_counts[e.state] = self.finished_counts.get(e.state, 0) + 1
        if e.task_id in self.dirty_progress and (p := self.progress.get(e.task_id)) is not None:
            self.store.set_progress([(e.task_id, p)])  # the task ends where its output ended, not at the last flush
        if e.task_id in self.metrics:
            self.live.drop(e.task_id)  # its event reads the series the store now holds
        self.after(functools.partial(self.tally.finished, e.state.value))
        if e.attempt and e.attempt_state is TaskState.LOST:
            self.tally.lost += 1
        if self.prom is not None:
            self.prom.ready_at.pop(e.task_id, None)
        self._end_attempt(e.task_id, e.attempt)
        kind = ev.TaskEventKind.CANCELLED if e.state is TaskState.CANCELLED else ev.TaskEventKind.FINISHED
        known = None
        if e.attempt and e.attempt_state is not TaskState.LOST:
            known = self.live.finished(e.task_id, e.attempt, e.state, e.error, result)
        self.task_event(kind, e.task_id, known)
        self.after(functools.partial(_log_finished, e))

    def _requeued(self, e: Requeued, now: float) -> None:
        if e.attempt_state is TaskState.LOST:
            self.store.finish_attempt(e.task_id, e.attempt, TaskState.LOST, finished_at=now, error=e.error)
        self.store.set_task(
            e.task_id,
            TaskState.PENDING,
            error=e.error,
            retries_used=self.scheduler.retries_used(e.task_id),
            lost_used_retry=self.scheduler.lost_used_retry(e.task_id),
        )
        self.tally.retries += 1
        if e.attempt_state is TaskState.LOST:
            self.tally.lost += 1
        self._end_attempt(e.task_id, e.attempt)
        self.task_event(ev.TaskEventKind.UPDATED, e.task_id)
        self.after(
            lambda: log.info(
                "task %s attempt %d %s, queued again%s",
                e.task_id,
                e.attempt,
                e.attempt_state.value,
                f": {e.error}" if e.error else "",
            )
        )
        self.after(self.kick)

    def _end_attempt(self, task_id: str, attempt: int) -> None:
        self.progress.pop(task_id, None)
        self.dirty_progress.discard(task_id)
        series = self.metrics.pop(task_id, None)
        if series and attempt:
            self.store.set_attempt_metrics(task_id, attempt, series.points())
        tail = self.tails.get(task_id, attempt) if attempt else None
        if tail is not None:
            if tail.dirty:  # stays dirty until the commit drops the tail: a failed commit writes it again
                self.store.write_output([(task_id, attempt, tail.start, bytes(tail.buf))])
            self.after(lambda: self.tails.finish(task_id, attempt))

    def send(self, executor: str, cmd: Command) -> None:
        s = self.sessions.get(executor)
        if s is not None:
            s.send(cmd)

    # ---- dispatch ----

    def dispatch(self) -> None:
        """One dispatch round: place what fits, commit the attempts, then tell the runners."""
        self._dispatch_scheduled = False
        m = self.prom
        if self._arrivals:
            self._stamp_ready()
        placed = self.scheduler.assign()
        if not placed:
            return
        now = self.clock()
        self.tally.dispatches += len(placed)
        with self.change():
            for d in placed:
                self.store.add_attempt(d.task_id, d.attempt, d.executor, d.gpu_ids, now)
                row = self.store.task_row(d.task_id)  # as the attempt leaves it, without the attempts
                spec = row.spec
                if m is not None:
                    m.observe_dispatch(d.task_id, d.attempt, now, row.submitted_at or now)
                self.tails.open(d.task_id, d.attempt)
                self.after(functools.partial(self.send, d.executor, AssignCmd(d.task_id, d.attempt, spec, d.gpu_ids)))
                known = self.live.dispatched(row, d.attempt, d.executor, d.gpu_ids, now)
                self.task_event(ev.TaskEventKind.DISPATCHED, d.task_id, known)
                self.after(functools.partial(_log_dispatched, spec, d))
            self.mark_busy(d.executor for d in placed)

    def _stamp_ready(self) -> None:
        """When the tasks that became ready since the last round did (this round follows within a loop turn)."""
        assert self._arrivals is not None and self.prom is not None
        now, ready_at = self.clock(), self.prom.ready_at
        for task_id in self._arrivals:
            ready_at.setdefault(task_id, now)
        self._arrivals.clear()

    def mark_busy(self, names: Iterable[str]) -> None:
        """Publish the executors' state after the commit, once each however often a change marks them."""
        if not self._busy:
            self.after(self._publish_marked)
        self._busy.update(names)

    def _publish_marked(self) -> None:
        names, self._busy = self._busy, set()
        if self.fanout.active:
            for name in sorted(names):
                if self.registry.get(name):
                    self.fanout.publish(self.executor_event(ev.ExecutorEventKind.UPDATED, name))


def _log_dispatched(spec: TaskSpec, d: Dispatch) -> None:
    if log.isEnabledFor(logging.INFO):
        log.info(
            "task %s (%s) dispatched to %s, attempt %d%s",
            d.task_id,
            spec.name or spec.command_text[:40],
            d.executor,
            d.attempt,
            f", gpus {list(d.gpu_ids)}" if d.gpu_ids else "",
        )


def _log_finished(e: Finished) -> None:
    if log.isEnabledFor(logging.INFO):
        log.info("task %s %s%s", e.task_id, e.state.value, f": {e.error}" if e.error else "")
