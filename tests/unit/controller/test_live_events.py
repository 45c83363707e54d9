"""Events of a task's dispatch and end are built from memory, and say exactly what the store holds then."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest
from dtask_common import events as ev
from dtask_common.config import Config
from dtask_common.models import AttemptResult, Capacity, Progress, Task, TaskSpec, TaskState, WatchFilter
from dtask_controller import commands, lifecycle, liveness, queries, recovery, reports
from dtask_controller.core import ControllerCore
from dtask_controller.runner_messages import Hello
from dtask_controller.settings import Settings
from dtask_controller.store import SqliteStore


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def make_core(tmp_path: Path) -> ControllerCore:
    settings = replace(Settings.from_config(Config()), dead_after_s=3, lost_after_s=60)
    core = ControllerCore(SqliteStore(tmp_path / "c.db"), settings, Clock())
    recovery.restore(core)
    return core


class Recorder:
    """Each published task event with the task as the store holds it at that moment; counts store reads."""

    def __init__(self, core: ControllerCore) -> None:
        self.pairs: list[tuple[ev.TaskEvent, Task | None]] = []
        self.reads = 0
        store, fanout = core.store, core.fanout
        get_task, publish = store.get_task, fanout.publish

        def counted(task_id: str) -> Task | None:
            self.reads += 1
            return get_task(task_id)

        def recorded(body: ev.EventBody) -> None:
            if isinstance(body, ev.TaskEvent):
                stored = get_task(body.task.id)
                self.pairs.append((body, stored and queries.overlay(core, stored)))
            publish(body)

        store.get_task = counted  # type: ignore[method-assign]
        fanout.publish = recorded  # type: ignore[method-assign]
        queries.subscribe(core, WatchFilter())

    def kinds(self) -> list[ev.TaskEventKind]:
        return [e.kind for e, _ in self.pairs]


async def settle() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


def test_dispatch_and_finish_publish_without_reading_the_store(tmp_path: Path) -> None:
    async def go() -> None:
        core = make_core(tmp_path)
        reports.connected(core, Hello("r1", capacity=Capacity(slots=1), protocol_version=1))
        (tid,) = commands.submit(core, [TaskSpec(name="a", shell="true")])
        rec = Recorder(core)
        await settle()
        core.clock.t += 2  # type: ignore[attr-defined]
        reports.finished(
            core,
            "r1",
            AttemptResult(
                tid, 1, TaskState.SUCCEEDED, exit_code=0, result={"ok": 1.5, "l": [1, "x"]}, started_at=1000.5
            ),
        )
        assert rec.kinds() == [ev.TaskEventKind.DISPATCHED, ev.TaskEventKind.FINISHED]
        for event, stored in rec.pairs:
            assert event.task == stored
        assert rec.reads == 0
        assert rec.pairs[1][0].task.attempts[0].duration_s == pytest.approx(1.5)
        assert len(core.live) == 0
        core.store.close()

    asyncio.run(go())


@pytest.mark.parametrize("how", ["failed_then_retried", "progress", "lost", "cancelled"])
def test_other_paths_publish_what_the_store_holds(tmp_path: Path, how: str) -> None:
    async def go() -> None:
        core = make_core(tmp_path)
        s = reports.connected(core, Hello("r1", capacity=Capacity(slots=1), protocol_version=1))
        (tid,) = commands.submit(core, [TaskSpec(name="a", shell="true", max_retries=1)])
        rec = Recorder(core)
        await settle()
        if how == "failed_then_retried":
            reports.finished(core, "r1", AttemptResult(tid, 1, TaskState.FAILED, exit_code=1, error="exit 1"))
            await settle()
            reports.finished(core, "r1", AttemptResult(tid, 2, TaskState.SUCCEEDED, exit_code=0))
        elif how == "progress":
            reports.progress(core, "r1", tid, 1, Progress(label="half", step=1, total=2))
            lifecycle.flush(core)  # the stored progress: the end reads it from the store
            reports.finished(core, "r1", AttemptResult(tid, 1, TaskState.SUCCEEDED, exit_code=0))
        elif how == "lost":
            reports.disconnected(core, s)
            core.clock.t += 61  # type: ignore[attr-defined]
            liveness.check(core)
        else:
            commands.cancel(core, tid)
            reports.finished(core, "r1", AttemptResult(tid, 1, TaskState.CANCELLED, error="cancelled"))
        assert len(rec.kinds()) >= 2
        for event, stored in rec.pairs:
            assert event.task == stored
        assert queries.task(core, tid) == rec.pairs[-1][0].task
        assert len(core.live) == 0
        core.store.close()

    asyncio.run(go())
