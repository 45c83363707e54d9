"""Test doubles for the TUI: a fake controller client (the AsyncController API) and sample data."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import replace

from dtask_client import Conflict, ControllerUnavailable, DtaskError
from dtask_common.events import (
    ExecutorEvent,
    ExecutorEventKind,
    ProgressEvent,
    Snapshot,
    TaskEvent,
    TaskEventKind,
    UsageEvent,
    WatchEvent,
)
from dtask_common.models import (
    Attempt,
    Capacity,
    ExecutorInfo,
    ExecutorState,
    ExecutorUsage,
    GpuUsage,
    Identity,
    Progress,
    QueueStatus,
    Resources,
    Task,
    TaskSpec,
    TaskState,
    UsageSample,
)

NOW = 1_780_000_000.0


def natural(text: str) -> tuple[object, ...]:
    """The order the fake pages in: 't9' before 't10'."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", text))


def task(
    i: int,
    state: TaskState = TaskState.PENDING,
    *,
    name: str | None = None,
    executor: str = "gpu-1",
    tags: tuple[str, ...] = (),
    progress: Progress | None = None,
    error: str = "",
    result: dict[str, object] | None = None,
    spacing: float = 1.0,
) -> Task:
    """Task t{i}; task i+1 is submitted, dispatched and finished `spacing` seconds after task i."""
    at = i * spacing
    spec = TaskSpec(
        name=name or f"train-{i}",
        shell=f"python train.py --seed {i}",
        cwd="/work",
        resources=Resources(cpus=2, gpus=1),
        tags=tags,
        max_retries=1,
    )
    attempts = []
    if state is not TaskState.PENDING:
        a = Attempt(
            f"t{i}",
            1,
            executor=executor,
            gpu_ids=(0,),
            dispatched_at=NOW - 100 + at,
            state=TaskState.RUNNING if state is TaskState.RUNNING else state,
        )
        if state.finished:
            a.finished_at = NOW - 10 + at
            a.error = error
            a.exit_code = 1 if state is TaskState.FAILED else 0
        attempts.append(a)
    return Task(
        id=f"t{i}",
        spec=spec,
        state=state,
        submitted_at=NOW - 200 + at,
        attempts=attempts,
        progress=progress,
        result=result,
        error=error,
    )


def sample(at: float = NOW, cores: int = 8, cpu: float = 40.0, gpus: int = 2) -> UsageSample:
    per = tuple(float((i * 37) % 100) for i in range(cores))
    return UsageSample(
        at=at,
        cpu_percent=cpu,
        per_cpu_percent=per,
        ram_percent=55.0,
        swap_percent=3.0,
        load_avg=(1.0, 0.8, 0.5),
        ram_total_bytes=64 << 30,
        ram_used_bytes=35 << 30,
        gpus=tuple(GpuUsage(i, "A100", 70.0 + i, 45.0, 80 << 30) for i in range(gpus)),
    )


def executor(
    name: str, state: ExecutorState = ExecutorState.BUSY, cores: int = 8, running: tuple[str, ...] = (), gpus: int = 2
) -> ExecutorInfo:
    capacity = Capacity(slots=2, cpus=cores, memory_mb=65536, gpus=tuple(range(gpus)))
    return ExecutorInfo(
        name=name,
        state=state,
        capacity=capacity,
        labels={"gpu": "a100"},
        address=f"10.0.0.{len(name)}:50100",
        version="0.1.0",
        connected_since=NOW - 3600,
        last_seen=NOW,
        running_task_ids=running,
        last_usage=sample(cores=cores, gpus=gpus),
    )


def cluster() -> tuple[list[Task], list[ExecutorInfo], list[ExecutorUsage]]:
    """A small cluster: running, pending, finished and failed tasks; a dead and a 128-core executor."""
    tasks = [
        task(1, TaskState.RUNNING, progress=Progress("epoch", 45, 100, 45.0, 3.2, 12.0, 15.0, NOW)),
        task(2, TaskState.PENDING, tags=("sweep",)),
        task(3, TaskState.SUCCEEDED, result={"loss": 0.123, "acc": 0.98}),
        task(4, TaskState.FAILED, error="RuntimeError: CUDA out of memory"),
        task(5, TaskState.CANCELLED, executor="big-1"),
        task(6, TaskState.RUNNING, name="eval-6", executor="big-1", progress=Progress("", 3, 10)),
    ]
    execs = [
        executor("gpu-1", running=("t1",)),
        executor("dead-1", ExecutorState.DEAD),
        executor("big-1", cores=128, running=("t6",)),
    ]
    usage = [
        ExecutorUsage(
            e.name, e.dead, e.last_usage, tuple(sample(NOW - 60 + k, cores=8, cpu=float(k * 1.5)) for k in range(60))
        )
        for e in execs
    ]
    return tasks, execs, usage


def snapshot_event(seq: int = 1) -> WatchEvent:
    tasks, execs, usage = cluster()
    return WatchEvent(seq, NOW, Snapshot(tasks, execs, usage, QueueStatus(pending=1, running=2), last=True))


class FakeController:
    """Implements the AsyncController methods the TUI uses, over in-memory data."""

    def __init__(self, role: str = "operator", watch_error: DtaskError | None = None):
        self.address = "127.0.0.1:50051"
        self.role = role
        tasks, execs, usage = cluster()
        self.tasks_by_id = {t.id: t for t in tasks}
        self.execs = {e.name: e for e in execs}
        self.usage = usage
        self.queue_status = QueueStatus(pending=1, running=2)
        self.events: asyncio.Queue[WatchEvent | BaseException | None] = asyncio.Queue()
        self.calls: list[tuple[str, object]] = []
        self.watch_error = watch_error
        self.watches = 0
        self.watch_args: list[tuple[int, int]] = []
        self.page_gate: asyncio.Event | None = None  # set: page calls wait for it
        self.output = {"t1": [b"epoch 1 loss=0.9\n", b"epoch 2 loss=0.7\n", b"epoch: 45%|###  | 45/100\n"]}
        self.closed = False

    async def whoami(self) -> Identity:
        return Identity(self.role, "alice", "ctrl@test", "0.1.0")

    async def executors(self, include_gone: bool = False) -> list[ExecutorInfo]:
        self.calls.append(("executors", None))
        return list(self.execs.values())

    async def resource_usage(self, executor: str | None = None, history: int = 60) -> list[ExecutorUsage]:
        return list(self.usage)

    async def tasks(self) -> list[Task]:
        self.calls.append(("tasks", None))
        return list(self.tasks_by_id.values())

    async def queue(self) -> QueueStatus:
        return self.queue_status

    async def task_page(
        self,
        states: list[TaskState] | None = None,
        tag: str | None = None,
        executor: str | None = None,
        name_contains: str | None = None,
        page_token: str = "",
        page_size: int = 500,
    ) -> tuple[list[Task], str, int]:
        """ListTasks over the held tasks: id order, `after:<id>` tokens, the total over all pages."""
        self.calls.append(("task_page", (tuple(states or ()), executor, name_contains, page_token)))
        if self.page_gate is not None:
            await self.page_gate.wait()
        chosen = [
            t
            for t in sorted(self.tasks_by_id.values(), key=lambda t: natural(t.id))
            if (not states or t.state in states)
            and (not executor or t.executor == executor)
            and (not name_contains or name_contains in t.name)
        ]
        start = 0
        if page_token:
            after = natural(page_token.removeprefix("after:"))
            start = next((i for i, t in enumerate(chosen) if natural(t.id) > after), len(chosen))
        page = chosen[start : start + page_size]
        more = start + page_size < len(chosen)
        return page, f"after:{page[-1].id}" if more else "", len(chosen)

    async def cancel(self, task_id: str) -> Task:
        self.calls.append(("cancel", task_id))
        t = self.tasks_by_id[task_id]
        if t.state.finished:
            raise Conflict(f"task {task_id} already finished")
        t = replace(t, state=TaskState.CANCELLED)
        self.tasks_by_id[task_id] = t
        return t

    async def retry(self, task_id: str) -> Task:
        self.calls.append(("retry", task_id))
        t = replace(self.tasks_by_id[task_id], state=TaskState.PENDING)
        self.tasks_by_id[task_id] = t
        return t

    async def drain(self, name: str, undrain: bool = False) -> ExecutorInfo:
        self.calls.append(("drain", (name, undrain)))
        e = replace(self.execs[name], state=ExecutorState.IDLE if undrain else ExecutorState.DRAINING)
        self.execs[name] = e
        return e

    async def pause(self) -> QueueStatus:
        self.calls.append(("pause", None))
        self.queue_status = replace(self.queue_status, paused=True)
        return self.queue_status

    async def resume(self) -> QueueStatus:
        self.calls.append(("resume", None))
        self.queue_status = replace(self.queue_status, paused=False)
        return self.queue_status

    async def logs(
        self, task_id: str, attempt: int = 0, follow: bool = False, *, tail_bytes: int = 0
    ) -> AsyncIterator[bytes]:
        self.calls.append(("logs", (task_id, attempt, follow)))
        for chunk in self.output.get(task_id, []):
            yield chunk

    async def watch_window(
        self, include_usage: bool = True, include_progress: bool = True, finished_limit: int = 0, max_batch: int = 0
    ) -> AsyncIterator[WatchEvent]:
        """Watch: the snapshot (every unfinished task, the newest finished_limit finished ones), then events."""
        self.watches += 1
        self.watch_args.append((finished_limit, max_batch))
        if self.watch_error is not None:
            raise self.watch_error
        tasks = sorted(self.tasks_by_id.values(), key=lambda t: natural(t.id))
        if finished_limit:
            done = [t for t in tasks if t.state.finished][-finished_limit:]
            keep = {t.id for t in done}
            tasks = [t for t in tasks if not t.state.finished or t.id in keep]
        yield WatchEvent(1, NOW, Snapshot(tasks, list(self.execs.values()), list(self.usage), self.queue_status))
        while True:
            item = await self.events.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    async def close(self) -> None:
        self.closed = True


def progress_event(seq: int, task_id: str, step: int, total: int = 100) -> WatchEvent:
    return WatchEvent(seq, NOW, ProgressEvent(task_id, 1, Progress("epoch", step, total, 100.0 * step / total)))


def task_event(seq: int, t: Task, kind: TaskEventKind = TaskEventKind.UPDATED) -> WatchEvent:
    return WatchEvent(seq, NOW, TaskEvent(kind, t))


def usage_event(seq: int, name: str, at: float, cpu: float = 50.0, cores: int = 8) -> WatchEvent:
    return WatchEvent(seq, at, UsageEvent(name, sample(at, cores=cores, cpu=cpu)))


def executor_event(seq: int, e: ExecutorInfo, kind: ExecutorEventKind = ExecutorEventKind.UPDATED) -> WatchEvent:
    return WatchEvent(seq, NOW, ExecutorEvent(kind, e))


__all__ = ["ControllerUnavailable", "FakeController"]
