"""The pure scheduler: who runs what, task lifecycle, retries, dependencies and fencing (no I/O, no clock)."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping

from dtask_common.depgraph import descendants
from dtask_common.models import Capacity, TaskSpec, TaskState

from dtask_controller.effects import (
    CancelAttempt,
    Dispatch,
    Effect,
    Finished,
    Requeued,
    SchedulerError,
    Stale,
    UnknownTask,
)
from dtask_controller.fleet import Fleet
from dtask_controller.placement import Executor, shape_of
from dtask_controller.ready import ReadyQueue
from dtask_controller.room import best
from dtask_controller.task_entry import TaskEntry, dep_error


class Scheduler:
    """Holds every active (pending or running) task and every executor; decides dispatches.

    Ready tasks sit in one heap per resource shape (cpus, memory, gpus, labels), ordered by priority then
    submission order, and executors with room in the Fleet (fleet.py, room.py), so a dispatch round never walks
    tasks that cannot run nor executors that are full."""

    def __init__(self) -> None:
        self.paused = False
        self._tasks: dict[str, TaskEntry] = {}
        self._fleet = Fleet()
        self._ready = ReadyQueue(self._is_ready)
        self._dependants: dict[str, set[str]] = {}

    # ---- queries ----

    def state(self, task_id: str) -> TaskState | None:
        e = self._tasks.get(task_id)
        return e.state if e else None

    def current_attempt(self, task_id: str) -> int:
        e = self._tasks.get(task_id)
        return e.attempts if e else 0

    def executor_of(self, task_id: str, attempt: int) -> str:
        """The executor the running attempt was dispatched to; '' when that attempt is not the running one."""
        e = self._tasks.get(task_id)
        return e.executor if e is not None and e.state is TaskState.RUNNING and e.attempts == attempt else ""

    def retries_used(self, task_id: str) -> int:
        e = self._tasks.get(task_id)
        return e.retries_used if e else 0

    def running_on(self, executor: str) -> list[tuple[str, int]]:
        running = self._fleet.running_ids(executor)
        return sorted(((t, self._tasks[t].attempts) for t in running), key=lambda x: int(x[0]))

    def running_count(self) -> int:
        return self._fleet.running_count()

    def __contains__(self, task_id: str) -> bool:
        return task_id in self._tasks

    def __len__(self) -> int:
        return len(self._tasks)

    # ---- tasks ----

    def add(
        self,
        task_id: str,
        spec: TaskSpec,
        deps: Iterable[str] = (),
        finished_deps: Mapping[str, TaskState] | None = None,
        attempts: int = 0,
        retries_used: int = 0,
    ) -> list[Effect]:
        """Queue a task. deps are task ids; finished_deps gives the state of deps no longer active."""
        e = TaskEntry(
            task_id,
            int(task_id),
            spec.priority,
            shape_of(spec),
            spec.max_retries,
            attempts=attempts,
            retries_used=retries_used,
        )
        unmet: set[str] | None = None  # (most tasks wait on none: no set for them)
        for dep in deps:
            if dep in self._tasks:
                if unmet is None:
                    unmet = set()
                unmet.add(dep)
            else:
                st = finished_deps.get(dep) if finished_deps else None
                if st is not TaskState.SUCCEEDED:
                    return [Finished(task_id, TaskState.FAILED, dep_error(dep, st))]
        self._tasks[task_id] = e
        if unmet:
            e.unmet = unmet
            for dep in unmet:
                self._dependants.setdefault(dep, set()).add(task_id)
        else:
            self._push(e)
        return []

    def restore_running(
        self, task_id: str, spec: TaskSpec, attempt: int, executor: str, gpu_ids: tuple[int, ...], retries_used: int = 0
    ) -> None:
        """Re-create a task that the store says is running (controller restart)."""
        e = TaskEntry(
            task_id,
            int(task_id),
            spec.priority,
            shape_of(spec),
            spec.max_retries,
            attempts=attempt,
            retries_used=retries_used,
            state=TaskState.RUNNING,
            executor=executor,
            gpu_ids=gpu_ids,
        )
        self._tasks[task_id] = e
        self._take(self._fleet.restored(executor), e)

    def cancel(self, task_id: str) -> list[Effect]:
        """Cancel a pending task now, or ask the runner to stop a running one."""
        e = self._tasks.get(task_id)
        if e is None:
            raise UnknownTask(f"task {task_id} is not pending or running")
        if e.state is TaskState.PENDING:
            self._forget(e)
            return [
                Finished(task_id, TaskState.CANCELLED, "cancelled by an operator"),
                *self._resolve(task_id, TaskState.CANCELLED),
            ]
        e.cancel_requested = True
        ex = self._fleet.get(e.executor)
        if ex is None or not ex.online:
            return []
        return [CancelAttempt(task_id, e.attempts, e.executor)]

    def cancel_requested(self, task_id: str) -> bool:
        e = self._tasks.get(task_id)
        return bool(e and e.cancel_requested)

    # ---- attempts ----

    def attempt_finished(self, task_id: str, attempt: int, state: TaskState, error: str = "") -> list[Effect]:
        """A runner reported the end of an attempt; reports about non-current attempts are Stale."""
        e = self._tasks.get(task_id)
        if e is None or e.state is not TaskState.RUNNING or e.attempts != attempt:
            cur = e.attempts if e else None
            return [Stale(task_id, attempt, f"attempt {attempt} is not the running attempt (current: {cur})")]
        self._release(e)
        if e.cancel_requested and state is not TaskState.SUCCEEDED:
            state = TaskState.CANCELLED
        if state is TaskState.SUCCEEDED or state is TaskState.CANCELLED:
            self._forget(e)
            return [
                Finished(task_id, state, error if state is not TaskState.SUCCEEDED else "", attempt, state),
                *self._resolve(task_id, state),
            ]
        return self._retry_or_fail(e, attempt, state, error)

    def attempt_lost(
        self, task_id: str, attempt: int, reason: str, *, never_started: bool = False, give_up: bool = False
    ) -> list[Effect]:
        """The attempt's runner vanished or does not know the attempt: LOST, then retry if allowed.

        never_started: the runner never got it (an assignment lost with its session); queued again
        without using a retry. give_up: the task fails with reason (it keeps killing its runners)."""
        e = self._tasks.get(task_id)
        if e is None or e.state is not TaskState.RUNNING or e.attempts != attempt:
            return [Stale(task_id, attempt, "not the running attempt")]
        self._release(e)
        if e.cancel_requested:
            self._forget(e)
            return [
                Finished(task_id, TaskState.CANCELLED, f"cancelled ({reason})", attempt, TaskState.LOST),
                *self._resolve(task_id, TaskState.CANCELLED),
            ]
        if give_up:
            self._forget(e)
            return [
                Finished(task_id, TaskState.FAILED, reason, attempt, TaskState.LOST),
                *self._resolve(task_id, TaskState.FAILED),
            ]
        return self._retry_or_fail(e, attempt, TaskState.LOST, reason, free=never_started)

    def adopt(self, task_id: str, attempt: int, executor: str) -> bool:
        """The runner of a LOST attempt is back with it and no newer attempt started: the attempt runs
        again there (with its GPUs) and the retry its loss used is given back."""
        if not self.adoptable(task_id, attempt, executor):
            return False
        e, ex = self._tasks[task_id], self._fleet.get(executor)
        assert e.lost is not None and ex is not None
        e.state, e.executor, e.gpu_ids = TaskState.RUNNING, executor, e.lost[2]
        e.retries_used -= int(e.lost[3])
        e.lost = None
        self._take(ex, e)
        return True

    def adoptable(self, task_id: str, attempt: int, executor: str) -> bool:
        """The task is queued again because this attempt on this executor was lost, and nothing newer started."""
        e = self._tasks.get(task_id)
        return (
            e is not None
            and executor in self._fleet
            and e.lost is not None
            and e.state is TaskState.PENDING
            and e.attempts == attempt
            and e.lost[:2] == (attempt, executor)
        )

    def restore_lost(
        self, task_id: str, attempt: int, executor: str, gpu_ids: tuple[int, ...], used_a_retry: bool
    ) -> None:
        """A restored pending task is queued again because this attempt was lost (controller restart): its
        runner may still take it back."""
        e = self._tasks.get(task_id)
        if e is not None and e.state is TaskState.PENDING and e.attempts == attempt:
            e.lost = (attempt, executor, gpu_ids, used_a_retry)

    def lost_used_retry(self, task_id: str) -> bool | None:
        """Whether the loss that queued the task again used a retry; None when it is not queued after a loss."""
        e = self._tasks.get(task_id)
        return e.lost[3] if e is not None and e.lost is not None else None

    def hold(self, executor: str, key: tuple[str, int], spec: TaskSpec | None, gpu_ids: tuple[int, ...]) -> None:
        """An attempt runs there that the controller is stopping: its resources stay taken until it ends."""
        self._fleet.hold(executor, key, spec, gpu_ids)

    def unhold(self, executor: str, key: tuple[str, int]) -> None:
        self._fleet.unhold(executor, key)

    def _retry_or_fail(
        self, e: TaskEntry, attempt: int, state: TaskState, error: str, free: bool = False
    ) -> list[Effect]:
        if free or e.retries_used < e.max_retries:
            e.retries_used += 0 if free else 1
            e.lost = (attempt, e.executor, e.gpu_ids, not free) if state is TaskState.LOST else None
            e.state = TaskState.PENDING
            e.executor, e.gpu_ids = "", ()
            self._push(e)
            return [Requeued(e.id, attempt, state, error)]
        self._forget(e)
        final = TaskState.LOST if state is TaskState.LOST else TaskState.FAILED
        return [Finished(e.id, final, error, attempt, state), *self._resolve(e.id, final)]

    def _resolve(self, task_id: str, state: TaskState) -> list[Effect]:
        """Wake or fail the dependants of a task that reached a final state."""
        if state is TaskState.SUCCEEDED:
            for dep_id in self._waiting_on(task_id):
                d = self._tasks[dep_id]
                if isinstance(d.unmet, set):  # (always: it waited on this task)
                    d.unmet.discard(task_id)
                if not d.unmet:
                    self._push(d)
            return []
        out: list[Effect] = []
        for parent, dep_id in descendants(task_id, self._waiting_on):  # each fails: its dependency did
            self._forget(self._tasks[dep_id])
            out.append(
                Finished(dep_id, TaskState.FAILED, dep_error(parent, state if parent == task_id else TaskState.FAILED))
            )
        return out

    def _waiting_on(self, task_id: str) -> list[str]:
        """The pending tasks that wait for task_id, in id order; it is no longer waited for."""
        out = []
        for dep_id in sorted(self._dependants.pop(task_id, ()), key=int):
            d = self._tasks.get(dep_id)
            if d is not None and d.state is TaskState.PENDING:
                out.append(dep_id)
        return out

    def retry(self, task_id: str, spec: TaskSpec, attempts: int) -> list[Effect]:
        """Queue a new attempt of a finished task (attempts = attempts made so far)."""
        if task_id in self._tasks:
            raise SchedulerError(
                f"task {task_id} is still {self._tasks[task_id].state.value}; "
                "retry it once it has finished, or cancel it first"
            )
        e = TaskEntry(task_id, int(task_id), spec.priority, shape_of(spec), spec.max_retries, attempts=attempts)
        self._tasks[task_id] = e
        self._push(e)
        return []

    # ---- executors ----

    def executor_up(self, name: str, capacity: Capacity, labels: Mapping[str, str], draining: bool = False) -> None:
        """An executor joined (or rejoined); attempts it already runs keep their resources."""
        ex, running = self._fleet.up(name, capacity, labels, draining)
        for tid in running:
            e = self._tasks.get(tid)
            if e and e.state is TaskState.RUNNING and e.executor == name:
                self._take(ex, e)

    def set_online(self, name: str, online: bool) -> None:
        """False: its session ended or it fell silent, so no new work (its attempts stay running); True: back."""
        self._fleet.set_online(name, online)

    def executor_gone(self, name: str, reason: str) -> list[Effect]:
        """No session for lost_after_s: every attempt running there is LOST."""
        ex = self._fleet.get(name)
        if not ex:
            return []
        ex.online = False
        out: list[Effect] = []
        for tid, attempt in self.running_on(name):
            out.extend(self.attempt_lost(tid, attempt, reason))
        return out

    def set_draining(self, name: str, draining: bool) -> None:
        self._fleet.set_draining(name, draining)

    def known_executor(self, name: str) -> bool:
        return name in self._fleet

    def track_ready(self) -> list[str]:
        """From now on, append the id of every task that becomes ready to the list returned (its owner empties it)."""
        self._ready.arrivals = []
        return self._ready.arrivals

    # ---- dispatch ----

    def assign(self) -> list[Dispatch]:
        """Place ready tasks on executors: priority, then submission order; each on the least loaded that fits."""
        if self.paused:
            return []
        heads = self._ready.heads()
        if not heads:  # nothing ready: no executor need be looked at
            return []
        usable = self._fleet.usable()
        out: list[Dispatch] = []
        while heads and usable:
            _, _, shape = heapq.heappop(heads)
            if self._ready.head(shape) is None:
                continue
            ex = best(usable, shape)  # the least loaded that fits
            if ex is None:
                continue  # nothing free fits this shape this round; every task of it waits
            e = self._tasks[self._ready.pop(shape)]
            e.state = TaskState.RUNNING
            e.attempts += 1
            e.executor = ex.name
            e.gpu_ids = tuple(sorted(ex.free_gpus)[: shape[2]])
            self._take(ex, e)
            out.append(Dispatch(e.id, e.attempts, ex.name, e.gpu_ids))
            self._fleet.put_back(usable, ex)
            if (head := self._ready.head(shape)) is not None:
                heapq.heappush(heads, head)
        return out

    # ---- internals ----

    def _push(self, e: TaskEntry) -> None:
        e.state = TaskState.PENDING
        self._ready.push(e.shape, e.priority, e.seq, e.id)

    def _is_ready(self, task_id: str) -> bool:
        e = self._tasks.get(task_id)
        return e is not None and e.state is TaskState.PENDING and not e.unmet

    def _take(self, ex: Executor, e: TaskEntry) -> None:
        self._fleet.take(ex, e.id, e.shape, e.gpu_ids)

    def _release(self, e: TaskEntry) -> None:
        self._fleet.release(e.executor, e.id, e.shape, e.gpu_ids)

    def _forget(self, e: TaskEntry) -> None:
        self._tasks.pop(e.id, None)
        for dep in e.unmet:
            s = self._dependants.get(dep)
            if s:
                s.discard(e.id)
        e.state = TaskState.CANCELLED  # any heap entry left behind is now skipped
