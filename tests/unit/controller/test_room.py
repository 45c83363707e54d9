"""Dispatch over a large fleet: a round looks only at executors with room, and places as a walk over all would."""

from __future__ import annotations

import heapq
import random

import pytest
from dtask_common.models import Capacity, Resources, TaskSpec, TaskState
from dtask_controller.effects import Dispatch
from dtask_controller.placement import Executor
from dtask_controller.scheduler import Scheduler


class Walking(Scheduler):
    """The reference: every round walks every executor and takes max(spread) over those that fit."""

    def assign(self) -> list[Dispatch]:
        if self.paused:
            return []
        usable = [ex for ex in self._fleet.all() if ex.usable]
        heads = self._ready.heads()
        out: list[Dispatch] = []
        while heads and usable:
            _, _, shape = heapq.heappop(heads)
            if self._ready.head(shape) is None:
                continue
            ex = max((x for x in usable if x.fits(shape)), key=Executor.spread, default=None)
            if ex is None:
                continue
            e = self._tasks[self._ready.pop(shape)]
            e.state = TaskState.RUNNING
            e.attempts += 1
            e.executor = ex.name
            e.gpu_ids = tuple(sorted(ex.free_gpus)[: shape[2]])
            self._take(ex, e)
            out.append(Dispatch(e.id, e.attempts, ex.name, e.gpu_ids))
            if not ex.usable:
                usable.remove(ex)
            if (head := self._ready.head(shape)) is not None:
                heapq.heappush(heads, head)
        return out


def test_a_round_with_one_free_executor_in_a_busy_fleet_looks_at_few(monkeypatch: pytest.MonkeyPatch) -> None:
    s = Scheduler()
    for i in range(1000):
        s.executor_up(f"e{i}", Capacity(slots=1), {})
    for i in range(1, 1101):
        s.add(str(i), TaskSpec(shell="true"))
    first = s.assign()
    assert len(first) == 1000 and len({d.executor for d in first}) == 1000
    looked: list[str] = []
    usable = Executor.usable.fget  # type: ignore[attr-defined]
    monkeypatch.setattr(Executor, "usable", property(lambda self: looked.append(self.name) or usable(self)))
    s.attempt_finished(first[500].task_id, 1, TaskState.SUCCEEDED)
    (d,) = s.assign()
    assert d.executor == first[500].executor and len(looked) <= 5


@pytest.mark.parametrize("seed", range(20))
def test_placements_are_those_of_a_walk_over_every_executor(seed: int) -> None:
    rng = random.Random(seed)
    new, ref = Scheduler(), Walking()
    names = [f"e{i}" for i in range(rng.randint(1, 12))]
    for s in (new, ref):
        for n in names:
            s.executor_up(n, Capacity(slots=random.Random(n).randint(1, 3), cpus=4.0, gpus=(0, 1)), {})
    running: list[tuple[str, int]] = []
    next_id = 1
    for _step in range(60):
        r = rng.random()
        if r < 0.4:
            for _ in range(rng.randint(1, 5)):
                spec = TaskSpec(
                    shell="true",
                    priority=rng.randint(0, 2),
                    resources=Resources(cpus=rng.choice([0.0, 1.0, 3.0]), gpus=rng.choice([0, 0, 1])),
                )
                new.add(str(next_id), spec)
                ref.add(str(next_id), spec)
                next_id += 1
        elif r < 0.6 and running:
            tid, attempt = running.pop(rng.randrange(len(running)))
            assert new.attempt_finished(tid, attempt, TaskState.SUCCEEDED) == ref.attempt_finished(
                tid, attempt, TaskState.SUCCEEDED
            )
        elif r < 0.7:
            n, flag = rng.choice(names), rng.random() < 0.5
            new.set_draining(n, flag)
            ref.set_draining(n, flag)
        elif r < 0.8:
            n, flag = rng.choice(names), rng.random() < 0.5
            new.set_online(n, flag)
            ref.set_online(n, flag)
        got, want = new.assign(), ref.assign()
        assert got == want
        running += [(d.task_id, d.attempt) for d in got]


def test_a_round_with_nothing_ready_looks_at_no_executor(monkeypatch: pytest.MonkeyPatch) -> None:
    s = Scheduler()
    for i in range(100):
        s.executor_up(f"e{i}", Capacity(slots=1), {})
    looked: list[str] = []
    usable = Executor.usable.fget  # type: ignore[attr-defined]
    monkeypatch.setattr(Executor, "usable", property(lambda self: looked.append(self.name) or usable(self)))
    assert s.assign() == [] and looked == []
