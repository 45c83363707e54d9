"""The controller's domain core: ties store, scheduler, registry, output tails and the Watch hub (no gRPC)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from dtask_common import events as ev
from dtask_common.models import (
    FINISHED_STATES,
    AttemptResult,
    ExecutorInfo,
    ExecutorState,
    FieldError,
    Progress,
    QueueStatus,
    Task,
    TaskSpec,
    TaskState,
    UsageSample,
    validate_batch,
)

from dtask_controller import liveness, reconcile
from dtask_controller.deps import resolve_deps
from dtask_controller.domain import (
    MAX_SUBMIT,
    AckCmd,
    AssignCmd,
    CancelCmd,
    Command,
    Conflict,
    Hello,
    InvalidTasks,
    NotFound,
    Session,
    Settings,
    TooLarge,
    WelcomeCmd,
)
from dtask_controller.fanout import Fanout
from dtask_controller.output import OutputTails
from dtask_controller.poison import Deaths
from dtask_controller.registry import Registry
from dtask_controller.scheduler import (
    CancelAttempt,
    Dispatch,
    Effect,
    Finished,
    Requeued,
    Scheduler,
    SchedulerError,
    Stale,
)
from dtask_controller.store import Store, StoreFull

log = logging.getLogger("dtask.controller")


def _added(task: Task) -> ev.TaskEvent:
    return ev.TaskEvent(ev.TaskEventKind.ADDED, task)


class Engine:
    """Every state change goes: scheduler decides -> store commits -> then runners are told and watchers see it."""

    def __init__(self, store: Store, settings: Settings, clock: Callable[[], float] = time.time):
        self.store = store
        self.settings = settings
        self.clock = clock
        self.scheduler = Scheduler()
        self.registry = Registry(settings.dead_after_s, settings.lost_after_s, settings.usage_history, clock)
        self.hub = Fanout(clock, settings.watch_queue)
        self.tails = OutputTails(settings.output_tail_bytes)
        self.deaths = Deaths(settings.poison_after)
        self.sessions: dict[str, Session] = {}
        self.progress: dict[str, Progress] = {}
        self._dirty_progress: set[str] = set()
        self._finished_counts: dict[TaskState, int] = {}
        self._post: list[Callable[..., Any]] = []
        self._busy: set[str] = set()  # executors whose ExecutorEvent is due once the open change commits
        self._depth = 0
        self._dispatch_scheduled = False
        self._resyncing = False
        self._last_tick = 0.0
        self._tasks: list[asyncio.Task[None]] = []
        self._task_waiters: dict[str, asyncio.Event] = {}
        self.rejected_reports = 0  # runner reports and Hello claims on attempts not dispatched to that runner

    def count_rejected_report(self) -> None:
        self.rejected_reports += 1

    # ---- lifecycle ----

    def restore(self) -> None:
        """Rebuild the in-memory state from the store (start or restart)."""
        counts = self.store.counts()
        self._finished_counts = {s: counts[s] for s in FINISHED_STATES}
        self.scheduler.paused = self.store.get_meta("paused") == "1"
        running_on, pending = self._load_tasks()
        for name, _seen, cap, labels, address, version, drained in self.store.executors():
            self.registry.restore(name)
            rec = self.registry.get(name)
            if rec is not None:
                rec.capacity, rec.labels, rec.address, rec.version = cap, labels, address, version
                rec.drained = drained
                if name not in running_on:
                    rec.gone = True
        for name in running_on:
            self.registry.restore(name)  # no-op when known; else it gets lost_after_s to come back
        log.info("store %s: %d pending, %d running on %d executors, %d finished%s", self.store.path, pending,
                 sum(len(self.scheduler.running_on(n)) for n in running_on), len(running_on),
                 sum(self._finished_counts.values()), " (queue paused)" if self.scheduler.paused else "")

    def _load_tasks(self) -> tuple[set[str], int]:
        """Put the store's pending and running tasks into the scheduler; (executors running some, pending)."""
        running_on: set[str] = set()
        active = list(self.store.active_tasks())
        for t in active:
            if t.state is TaskState.RUNNING:
                self.scheduler.restore_running(t.id, t.spec, t.attempts, t.executor, t.gpu_ids, t.retries_used)
                stored = self.store.output(t.id, t.attempts)
                self.tails.open(t.id, t.attempts, *(stored or (0, b"")))
                running_on.add(t.executor)
        waiting = {t.id: t for t in active if t.state is TaskState.PENDING}
        pending = len(waiting)
        outside = {d for t in waiting.values() for d in t.deps if d not in waiting and d not in self.scheduler}
        finished = self.store.task_states(outside)
        added: set[str] = set()
        for root in waiting:  # dependencies first: a task may depend on a later one of its submission
            stack = [root]
            while stack:
                tid = stack[-1]
                if tid in added:
                    stack.pop()
                    continue
                todo = [d for d in waiting[tid].deps if d in waiting and d not in added and d not in stack]
                if todo:
                    stack.extend(todo)
                    continue
                stack.pop()
                added.add(tid)
                t = waiting[tid]
                self._apply(self.scheduler.add(t.id, t.spec, t.deps, finished, t.attempts, t.retries_used))
                if t.lost is not None:
                    self.scheduler.restore_lost(t.id, t.attempts, t.lost[0], t.gpu_ids, t.lost[1])
        return running_on, pending

    def _resync(self) -> None:
        """A commit failed (a full disk?) after the scheduler had moved on: rebuild it from the store."""
        log.warning("a store commit failed; rebuilding the queue from the store")
        self._resyncing = True
        try:
            counts = self.store.counts()
            self._finished_counts = {s: counts[s] for s in FINISHED_STATES}
            self.scheduler = Scheduler()
            self.scheduler.paused = self.store.get_meta("paused") == "1"
            self._load_tasks()
            for name in self.sessions:
                rec = self.registry.get(name)
                if rec is not None and rec.connected:
                    self.scheduler.executor_up(name, rec.capacity, rec.labels, draining=rec.draining)
        finally:
            self._resyncing = False
        with contextlib.suppress(RuntimeError):  # no event loop (a test driving the engine directly)
            self._kick()

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._every(self._liveness_interval(), self._liveness_tick)),
                       asyncio.create_task(self._every(self.settings.flush_interval_s, self.flush))]
        self._kick()

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        for s in list(self.sessions.values()):
            s.send(None)
        self.hub.close_all()
        self.flush()
        self.tails.end_all()  # output followers end their streams
        for event in self._task_waiters.values():
            event.set()

    def _liveness_tick(self) -> None:
        """check_liveness, first giving executors back the time this controller itself stood still."""
        now = time.monotonic()
        stalled = now - self._last_tick - self._liveness_interval() if self._last_tick else 0.0
        self._last_tick = now
        if stalled > self.settings.dead_after_s / 2:
            log.warning("the controller stood still for %.1fs (paused or overloaded); that silence is not held "
                        "against executors", stalled)
            self.registry.forgive(stalled)
        self.check_liveness()

    def _liveness_interval(self) -> float:
        return max(0.05, min(0.5, self.settings.dead_after_s / 5))

    async def _every(self, interval: float, fn: Callable[[], Any]) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                fn()
            except StoreFull as exc:  # keep the controller serving; the log says what broke
                log.error("periodic %s failed: %s", getattr(fn, "__name__", fn), exc)
            except Exception:
                log.exception("periodic %s failed", getattr(fn, "__name__", fn))

    # ---- the commit-then-tell discipline ----

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
        self.after(lambda: self.hub.publish(make()) if self.hub.active else None)

    def _task_event(self, kind: ev.TaskEventKind, task_id: str) -> None:
        self.publish(lambda: ev.TaskEvent(kind, self.task(task_id)))
        if task_id in self._task_waiters:
            self.after(lambda: self._task_waiters.pop(task_id).set() if task_id in self._task_waiters else None)

    def task_changed(self, task_id: str) -> asyncio.Event:
        """An event set the next time the task changes (dispatched, finished, requeued, ...)."""
        event = self._task_waiters.get(task_id)
        if event is None:
            event = self._task_waiters[task_id] = asyncio.Event()
        return event

    def _kick(self) -> None:
        if not self._dispatch_scheduled:
            self._dispatch_scheduled = True
            asyncio.get_running_loop().call_soon(self.dispatch)

    # ---- effects of the scheduler ----

    def _apply(self, effects: Sequence[Effect], result: dict[str, Any] | None = None) -> None:
        if not effects:
            return
        now = self.clock()
        with self.change():
            for e in effects:
                if isinstance(e, Finished):
                    if e.attempt and e.attempt_state is TaskState.LOST:
                        self.store.finish_attempt(e.task_id, e.attempt, TaskState.LOST, finished_at=now, error=e.error)
                    self.store.set_task(e.task_id, e.state, error=e.error,
                                        result=result if e.attempt else None)
                    self._finished_counts[e.state] = self._finished_counts.get(e.state, 0) + 1
                    self._end_attempt(e.task_id, e.attempt)
                    kind = ev.TaskEventKind.CANCELLED if e.state is TaskState.CANCELLED else ev.TaskEventKind.FINISHED
                    self._task_event(kind, e.task_id)
                    self.after(lambda e=e: log.info("task %s %s%s", e.task_id, e.state.value,
                                                    f": {e.error}" if e.error else ""))
                elif isinstance(e, Requeued):
                    if e.attempt_state is TaskState.LOST:
                        self.store.finish_attempt(e.task_id, e.attempt, TaskState.LOST, finished_at=now, error=e.error)
                    self.store.set_task(e.task_id, TaskState.PENDING, error=e.error,
                                        retries_used=self.scheduler.retries_used(e.task_id),
                                        lost_used_retry=self.scheduler.lost_used_retry(e.task_id))
                    self._end_attempt(e.task_id, e.attempt)
                    self._task_event(ev.TaskEventKind.UPDATED, e.task_id)
                    self.after(lambda e=e: log.info("task %s attempt %d %s, queued again%s", e.task_id, e.attempt,
                                                    e.attempt_state.value, f": {e.error}" if e.error else ""))
                    self.after(self._kick)
                elif isinstance(e, CancelAttempt):
                    self.after(lambda e=e: self._send(e.executor, CancelCmd(e.task_id, e.attempt,
                                                                            "cancelled by an operator")))
                elif isinstance(e, Stale):
                    self.after(lambda e=e: log.info("task %s attempt %d report ignored: %s", e.task_id, e.attempt,
                                                    e.reason))
                elif isinstance(e, Dispatch):  # pragma: no cover - dispatches come from dispatch()
                    raise TypeError("dispatch effects are applied by dispatch()")

    def _end_attempt(self, task_id: str, attempt: int) -> None:
        self.progress.pop(task_id, None)
        self._dirty_progress.discard(task_id)
        tail = self.tails.get(task_id, attempt) if attempt else None
        if tail is not None:
            if tail.dirty:  # stays dirty until the commit drops the tail: a failed commit writes it again
                self.store.write_output([(task_id, attempt, tail.start, bytes(tail.buf))])
            self.after(lambda: self.tails.finish(task_id, attempt))

    def _send(self, executor: str, cmd: Command) -> None:
        s = self.sessions.get(executor)
        if s is not None:
            s.send(cmd)

    # ---- dispatch ----

    def dispatch(self) -> None:
        """One dispatch round: place what fits, commit the attempts, then tell the runners."""
        self._dispatch_scheduled = False
        placed = self.scheduler.assign()
        if not placed:
            return
        now = self.clock()
        with self.change():
            for d in placed:
                self.store.add_attempt(d.task_id, d.attempt, d.executor, d.gpu_ids, now)
                spec = self.store.spec(d.task_id)
                self.tails.open(d.task_id, d.attempt)
                self.after(lambda d=d, spec=spec: self._send(d.executor, AssignCmd(d.task_id, d.attempt, spec,
                                                                                    d.gpu_ids)))
                self._task_event(ev.TaskEventKind.DISPATCHED, d.task_id)
                self.after(lambda d=d, spec=spec: log.info(
                    "task %s (%s) dispatched to %s, attempt %d%s", d.task_id, spec.name or spec.command_text[:40],
                    d.executor, d.attempt, f", gpus {list(d.gpu_ids)}" if d.gpu_ids else ""))
            self._mark_busy(d.executor for d in placed)

    def _mark_busy(self, names: Iterable[str]) -> None:
        """Publish the executors' state after the commit, once each however often a change marks them."""
        if not self._busy:
            self.after(self._publish_marked)
        self._busy.update(names)

    def _publish_marked(self) -> None:
        names, self._busy = self._busy, set()
        self._publish_busy(names)

    def _publish_busy(self, names: set[str]) -> None:
        if self.hub.active:
            for name in sorted(names):
                if self.registry.get(name):
                    self.hub.publish(ev.ExecutorEvent(ev.ExecutorEventKind.UPDATED, self.executor(name)))

    # ---- commands ----

    def submit(self, specs: Sequence[TaskSpec]) -> list[str]:
        """Validate the whole batch, then queue it in one transaction; returns the ids in order."""
        if len(specs) > MAX_SUBMIT:
            raise TooLarge(f"{len(specs)} tasks in one request; at most {MAX_SUBMIT} are accepted per call: "
                           "split the batch into several submissions")
        if not specs:
            raise InvalidTasks([FieldError("tasks", "the submission holds no task; give at least one")], 1)
        errors = validate_batch(specs)
        deps, order, dep_errors = resolve_deps(specs, self.store.task_states)
        errors.extend(dep_errors)
        if errors:
            raise InvalidTasks(sorted(errors, key=lambda e: e.index), len(specs))
        now = self.clock()
        with self.change():
            ids = self.store.add_tasks(specs, [[] for _ in specs], now)
            id_deps = [[ids[int(d[1:])] if d.startswith("#") else d for d in ds] for ds in deps]
            self.store.add_deps([(ids[i], d) for i in range(len(specs)) for d in id_deps[i]])
            if self.hub.active:
                for i, tid in enumerate(ids):
                    self.publish(functools.partial(_added, Task(tid, specs[i], submitted_at=now)))
            for i in order:
                finished = self.store.task_states(d for d in id_deps[i] if d not in self.scheduler)
                self._apply(self.scheduler.add(ids[i], specs[i], id_deps[i], finished))
        log.info("queued %d task%s: %s", len(ids), "" if len(ids) == 1 else "s",
                 ids[0] if len(ids) == 1 else f"{ids[0]}-{ids[-1]}")
        self._kick()
        return ids

    def _existing(self, task_id: str) -> Task:
        t = self.store.get_task(task_id)
        if t is None:
            raise NotFound(f"no task with id {task_id!r}; list tasks with ListTasks (dtask tasks)")
        return t

    def cancel(self, task_id: str) -> Task:
        if task_id not in self.scheduler:
            t = self._existing(task_id)
            raise Conflict(f"task {task_id} already {t.state.value}; nothing to cancel "
                           f"(RetryTask runs it again: dtask retry {task_id})")
        running = self.scheduler.state(task_id) is TaskState.RUNNING
        self._apply(self.scheduler.cancel(task_id))
        if running:
            log.info("task %s: cancel sent to %s", task_id, self.task(task_id).executor)
        return self.task(task_id)

    def retry(self, task_id: str) -> Task:
        t = self._existing(task_id)
        if task_id in self.scheduler:
            raise Conflict(f"task {task_id} is still {t.state.value}; retry it once it has finished, or cancel it")
        try:
            effects = self.scheduler.retry(task_id, t.spec, len(t.attempts))
        except SchedulerError as exc:
            raise Conflict(str(exc)) from None
        with self.change():
            self.store.set_task(task_id, TaskState.PENDING, error="", result=None, retries_used=0)
            self._finished_counts[t.state] -= 1
            self._apply(effects)
            self._task_event(ev.TaskEventKind.RETRIED, task_id)
        log.info("task %s queued again by an operator (was %s)", task_id, t.state.value)
        self._kick()
        return self.task(task_id)

    def drain(self, name: str, undrain: bool = False) -> ExecutorInfo:
        if self.registry.get(name) is None:
            raise NotFound(f"no executor named {name!r}; list them with ListExecutors (dtask executors)")
        with self.change():
            self.store.set_executor_drained(name, not undrain)
            draining = self.registry.set_draining(name, not undrain)
        if self.scheduler.known_executor(name):
            self.scheduler.set_draining(name, draining)
        log.info("executor %s %s", name, "takes work again" if undrain else "draining: no new work")
        if self.hub.active:
            self.hub.publish(ev.ExecutorEvent(ev.ExecutorEventKind.UPDATED, self.executor(name)))
        self._kick()
        return self.executor(name)

    def set_paused(self, paused: bool) -> QueueStatus:
        with self.change():
            self.store.set_meta("paused", "1" if paused else "0")
            self.scheduler.paused = paused
            self.publish(lambda: ev.QueueEvent(self.queue()))
        log.info("queue %s", "paused: nothing is dispatched" if paused else "resumed")
        self._kick()
        return self.queue()

    # ---- queries ----

    def queue(self) -> QueueStatus:
        running = self.scheduler.running_count()
        pending = len(self.scheduler) - running
        f = self._finished_counts
        return QueueStatus(paused=self.scheduler.paused, pending=pending, running=running,
                           succeeded=f.get(TaskState.SUCCEEDED, 0), failed=f.get(TaskState.FAILED, 0),
                           cancelled=f.get(TaskState.CANCELLED, 0), lost=f.get(TaskState.LOST, 0))

    def task(self, task_id: str) -> Task:
        t = self._existing(task_id)
        return self.overlay(t)

    def overlay(self, t: Task) -> Task:
        """Put the latest in-memory progress on a task read from the store."""
        p = self.progress.get(t.id)
        if p is not None and t.state is TaskState.RUNNING:
            t.progress = p
        if t.state is TaskState.RUNNING and (away := self.registry.out_of_touch(t.executor)) is not None:
            t.stale_since = away[0]
        return t

    def _publish_stale(self, name: str, only: set[str] | None = None) -> None:
        """The executor went out of touch or came back: its running tasks' stale marker changed."""
        for tid, _attempt in self.scheduler.running_on(name):
            if only is not None and tid not in only:
                continue
            if self._depth:
                self.publish(functools.partial(self._updated, tid))
            elif self.hub.active:
                self.hub.publish(self._updated(tid))

    def _updated(self, task_id: str) -> ev.TaskEvent:
        return ev.TaskEvent(ev.TaskEventKind.UPDATED, self.task(task_id))

    def executor(self, name: str) -> ExecutorInfo:
        if self.registry.get(name) is None:
            raise NotFound(f"no executor named {name!r}; list them with ListExecutors (dtask executors)")
        return self.registry.info(name, tuple(t for t, _ in self.scheduler.running_on(name)))

    def executors(self, include_gone: bool = False) -> list[ExecutorInfo]:
        out = [self.executor(n) for n in self.registry.names()]
        return [e for e in out if include_gone or e.state is not ExecutorState.GONE]

    # ---- runner sessions ----

    def runner_connected(self, hello: Hello) -> Session:
        """Register a session, send Welcome, reconcile what the runner reports; returns the session."""
        name = hello.name
        token, replaced = self.registry.connect(
            name, capacity=hello.capacity, labels=hello.labels, address=hello.address, version=hello.version,
            protocol_version=hello.protocol_version, draining=hello.draining, containment=hello.containment)
        old = self.sessions.get(name)
        session = self.sessions[name] = Session(name, token, hello.instance_id)
        if old is not None:
            if old.instance_id and hello.instance_id and old.instance_id != hello.instance_id:
                old.ended_because = (
                    f"another runner process connected as executor {name} from {hello.address or '?'} and "
                    f"replaced this one; two runners cannot share a name: start one of them with another --name")
                log.warning("executor %s: a different runner process took over the name (from %s)",
                            name, hello.address or "?")
            old.send(None)
        self.scheduler.executor_up(name, hello.capacity, hello.labels, draining=self.registry.draining(name))
        with self.change():
            self.store.upsert_executor(name, self.clock(), hello.address, hello.version, hello.capacity,
                                       hello.labels)
            stale = {tid for tid, _attempt in self.scheduler.running_on(name)}  # (one taken back has its event)
            offsets = reconcile.reconnect(self, hello, session)
            # First down the stream (what the change tells the runner goes after it, at commit).
            session.send(WelcomeCmd(self.settings.name, name, self.settings.usage_interval_s, offsets))
            self.publish(lambda: ev.ExecutorEvent(ev.ExecutorEventKind.UP, self.executor(name)))
            self._publish_stale(name, stale)
        log.info("executor %s up%s: %d slots, cpus %g, memory %d MiB, gpus %s, labels %s, version %s, at %s",
                 name, " (replaced its previous session)" if replaced else "", hello.capacity.slots,
                 hello.capacity.cpus, hello.capacity.memory_mb, list(hello.capacity.gpus), hello.labels or {},
                 hello.version or "?", hello.address or "?")
        self._kick()
        return session

    def runner_disconnected(self, session: Session) -> None:
        if not self.registry.disconnect(session.name, session.token):
            return
        if self.sessions.get(session.name) is session:
            del self.sessions[session.name]
        self.scheduler.executor_down(session.name)
        self.tails.give_up(session.name)
        log.info("executor %s disconnected; its attempts keep running for up to %gs", session.name,
                 max(self.settings.lost_after_s, liveness.keep_for(self).get(session.name, 0.0)))
        if self.hub.active:
            self.hub.publish(ev.ExecutorEvent(ev.ExecutorEventKind.UPDATED, self.executor(session.name)))
            self._publish_stale(session.name)

    def seen(self, session: Session) -> bool:
        """A message from a runner; False when the session was replaced (ignore the message)."""
        if not self.registry.is_current(session.name, session.token):
            return False
        if self.registry.seen(session.name):
            log.info("executor %s alive again", session.name)
            if self.hub.active:
                self.hub.publish(ev.ExecutorEvent(ev.ExecutorEventKind.UPDATED, self.executor(session.name)))
                self._publish_stale(session.name)
        return True

    def usage(self, name: str, sample: UsageSample) -> None:
        self.registry.add_usage(name, sample)
        if self.hub.active:
            self.hub.publish(ev.UsageEvent(name, sample))

    def report_progress(self, name: str, task_id: str, attempt: int, progress: Progress) -> None:
        if self.scheduler.current_attempt(task_id) != attempt or self.scheduler.state(task_id) is not TaskState.RUNNING:
            return
        self.progress[task_id] = progress
        self._dirty_progress.add(task_id)
        if self.hub.active:
            self.hub.publish(ev.ProgressEvent(task_id, attempt, progress))

    def output(self, task_id: str, attempt: int, offset: int, data: bytes) -> None:
        self.tails.append(task_id, attempt, offset, data)

    def assignment_refused(self, name: str, task_id: str, attempt: int, reason: str) -> None:
        """The runner will not run an assignment: queued again without using a retry."""
        if (task_id, attempt) not in self.scheduler.running_on(name):
            log.warning("executor %s refused attempt %d of task %s, which is not assigned to it; ignored", name,
                        attempt, task_id)
            return
        log.warning("executor %s refused attempt %d of task %s: %s", name, attempt, task_id, reason)
        # It is fuller than the controller counts: one slot stays taken until it reports a result or reconnects.
        self.scheduler.hold(name, ("", 0), None, ())
        self._apply(self.scheduler.attempt_lost(task_id, attempt, f"executor {name} refused it: {reason}",
                                                never_started=True))
        self._kick()

    def set_runner_draining(self, name: str, draining: bool) -> None:
        now = self.registry.set_draining(name, draining, by_runner=True)
        if self.scheduler.known_executor(name):
            self.scheduler.set_draining(name, now)
        log.info("executor %s %s", name, "drains (its own request)" if draining else "no longer drains itself")
        self._kick()

    def attempt_finished(self, name: str, r: AttemptResult) -> None:
        """Record a result (also of a superseded attempt), apply it, and ack it once committed."""
        session = self.sessions.get(name)
        if r.task_id not in self.scheduler and not self.store.has_task(r.task_id):
            log.warning("executor %s reported attempt %d of unknown task %r; acknowledged and ignored", name,
                        r.attempt, r.task_id)
            if session is not None:
                with self.change():
                    self.after(lambda: session.send(AckCmd(r.task_id, r.attempt)))
            return
        self.scheduler.unhold(name, (r.task_id, r.attempt))
        self.scheduler.unhold(name, ("", 0))
        with self.change():
            reconcile.take_back(self, name, r.task_id, r.attempt)  # a LOST attempt's result, nothing newer
            if self.scheduler.current_attempt(r.task_id) == r.attempt:
                self.deaths.ended(r.task_id)
                self.tails.await_rest(r.task_id, r.attempt, r.output_bytes, name)
            self.store.finish_attempt(r.task_id, r.attempt, r.state, finished_at=r.finished_at or self.clock(),
                                      exit_code=r.exit_code, signal=r.signal, error=r.error, result=r.result,
                                      peak_rss_bytes=r.peak_rss_bytes, cpu_time_s=r.cpu_time_s,
                                      started_at=r.started_at)
            self._apply(self.scheduler.attempt_finished(r.task_id, r.attempt, r.state, r.error), result=r.result)
            if session is not None:
                self.after(lambda: session.send(AckCmd(r.task_id, r.attempt)))
            self.dispatch()  # refill the freed slot within the same commit
            self._mark_busy((name,))

    def check_liveness(self) -> None:
        if liveness.lose_overdue(self):
            self._kick()
        for name, state in self.registry.check(liveness.keep_for(self)):
            if state is ExecutorState.DEAD:
                log.warning("executor %s dead: no message for %gs", name, self.settings.dead_after_s)
                if self.hub.active:
                    self.hub.publish(ev.ExecutorEvent(ev.ExecutorEventKind.DEAD, self.executor(name)))
                    self._publish_stale(name)
                continue
            log.warning("executor %s gone: no session for %gs; its attempts are lost", name,
                        self.settings.lost_after_s)
            s = self.sessions.pop(name, None)
            if s is not None:
                s.send(None)
            self._apply(self.scheduler.executor_gone(name, f"executor {name} is gone (no session for "
                                                           f"{self.settings.lost_after_s:g}s)"))
            if self.hub.active:
                self.hub.publish(ev.ExecutorEvent(ev.ExecutorEventKind.GONE, self.executor(name)))
            self._kick()

    def flush(self) -> None:
        """Write output tails and progress that changed (not state: state is committed as it changes)."""
        out = self.tails.take_dirty()
        prog = [(t, self.progress[t]) for t in self._dirty_progress if t in self.progress]
        self._dirty_progress.clear()
        if out or prog:
            try:
                with self.store.transaction():
                    if out:
                        self.store.write_output(out)
                    if prog:
                        self.store.set_progress(prog)
            except Exception:  # not written (a full disk?): still to write, next time
                for tid, attempt, _start, _data in out:
                    if (tail := self.tails.get(tid, attempt)) is not None:
                        tail.dirty = True
                self._dirty_progress.update(t for t, _p in prog)
                raise
