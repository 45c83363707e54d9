"""The executors as the scheduler sees them: which are up, what runs and is held on each, which have room (no I/O)."""

from __future__ import annotations

from collections.abc import Mapping

from dtask_common.models import Capacity, TaskSpec

from dtask_controller.effects import UnknownTask
from dtask_controller.placement import NO_SHAPE, Executor, Shape, shape_of
from dtask_controller.room import Entry, Room


class Fleet:
    """Every executor by name, and the Room of those that may have room for work.

    Whatever gives an executor room (it joined, a slot was given back, it came online, its drain changed)
    reopens it here, so a dispatch round looks only at the executors that may take work."""

    def __init__(self) -> None:
        self._executors: dict[str, Executor] = {}
        self._room = Room()

    def get(self, name: str) -> Executor | None:
        return self._executors.get(name)

    def all(self) -> list[Executor]:
        """Every known executor, in join order."""
        return list(self._executors.values())

    def __contains__(self, name: str) -> bool:
        return name in self._executors

    def running_ids(self, name: str) -> set[str]:
        """The ids of the tasks running on the executor (empty when it is unknown)."""
        ex = self._executors.get(name)
        return ex.running if ex else set()

    def running_count(self) -> int:
        return sum(len(ex.running) for ex in self._executors.values())

    def up(self, name: str, capacity: Capacity, labels: Mapping[str, str], draining: bool) -> tuple[Executor, set[str]]:
        """The executor joined (or rejoined), everything free: it, and the ids its previous self ran."""
        old = self._executors.get(name)
        ex = self._executors[name] = Executor.joined(name, capacity, labels, draining)
        self._room.reopen(ex)
        return ex, old.running if old else set()

    def restored(self, name: str) -> Executor:
        """The executor a restored running attempt is on; an offline one, holding nothing, when it is not known."""
        ex = self._executors.get(name)
        if ex is None:
            ex = self._executors[name] = Executor(name, Capacity(), {}, 0, 0.0, 0, [], online=False)
            self._room.reopen(ex)  # (offline: only its place in the join order)
        return ex

    def set_online(self, name: str, online: bool) -> None:
        if ex := self._executors.get(name):
            ex.online = online
            self._room.reopen(ex)

    def set_draining(self, name: str, draining: bool) -> None:
        ex = self._executors.get(name)
        if ex is None:
            raise UnknownTask(f"no executor named {name!r}")
        ex.draining = draining
        self._room.reopen(ex)

    def take(self, ex: Executor, task_id: str, shape: Shape, gpu_ids: tuple[int, ...]) -> None:
        """The task runs on the executor: one slot and its resources are in use."""
        ex.running.add(task_id)
        ex.take(shape, gpu_ids)

    def release(self, name: str, task_id: str, shape: Shape, gpu_ids: tuple[int, ...]) -> None:
        """The task no longer runs on the executor: what take() took is free again."""
        ex = self._executors.get(name)
        if ex and task_id in ex.running:
            ex.running.discard(task_id)
            ex.give(shape, gpu_ids)
            self._room.reopen(ex)

    def hold(self, name: str, key: tuple[str, int], spec: TaskSpec | None, gpu_ids: tuple[int, ...]) -> None:
        """An attempt runs there that the controller is stopping: its resources stay taken until it ends."""
        ex = self._executors.get(name)
        if ex is None or key in ex.held:
            return
        shape = shape_of(spec) if spec is not None else NO_SHAPE
        ex.held[key] = (shape, gpu_ids)
        ex.take(shape, gpu_ids)

    def unhold(self, name: str, key: tuple[str, int]) -> None:
        ex = self._executors.get(name)
        held = ex.held.pop(key, None) if ex else None
        if ex is not None and held is not None:
            ex.give(*held)
            self._room.reopen(ex)

    def usable(self) -> list[Entry]:
        """The usable executors as a heap, the best spread first (see Room.usable)."""
        return self._room.usable()

    def put_back(self, heap: list[Entry], ex: Executor) -> None:
        self._room.put_back(heap, ex)
