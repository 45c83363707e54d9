"""Where a task fits: task shapes, and each executor's free slots, CPUs, memory and GPUs (no I/O)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from dtask_common import runner_paths
from dtask_common.models import Capacity, TaskSpec

Shape = tuple[float, int, int, tuple[tuple[str, str], ...]]  # cpus, memory (MiB), gpus, required labels
NO_SHAPE: Shape = (0.0, 0, 0, ())


def shape_of(spec: TaskSpec) -> Shape:
    """What the task needs; a runner path it names ({path:NAME}) is needed like a label (see with_paths)."""
    r = spec.resources
    labels = spec.labels
    if not labels and not r.cpus and not r.memory_mb and not r.gpus and not runner_paths.path_names(spec):
        return NO_SHAPE  # most tasks: one shape shared
    if names := runner_paths.path_names(spec):
        labels = {**labels, **{runner_paths.PATH_LABEL + n: "" for n in names}}
    return (float(r.cpus), int(r.memory_mb), int(r.gpus), tuple(sorted(labels.items())) if labels else ())


def with_paths(labels: Mapping[str, str], path_names: Iterable[str]) -> dict[str, str]:
    """An executor's labels for placement: its own, and one per path it declares (PATH_LABEL + NAME)."""
    return {**labels, **{runner_paths.PATH_LABEL + n: "" for n in path_names}}


@dataclass(slots=True)
class Executor:
    """One executor as the scheduler sees it: its capacity, what is free, what runs and what is held there."""

    name: str
    capacity: Capacity
    labels: dict[str, str]
    free_slots: int
    free_cpus: float
    free_mem: int
    free_gpus: list[int]
    draining: bool = False
    online: bool = True
    running: set[str] = field(default_factory=set)
    held: dict[tuple[str, int], tuple[Shape, tuple[int, ...]]] = field(default_factory=dict)

    @classmethod
    def joined(cls, name: str, capacity: Capacity, labels: Mapping[str, str], draining: bool) -> Executor:
        """An executor that just joined, everything free: its slots and the assignments it holds beyond them."""
        free = (max(capacity.slots, 1) + capacity.prefetch, capacity.cpus, capacity.memory_mb, list(capacity.gpus))
        return cls(name, capacity, dict(labels), *free, draining=draining)

    def fits(self, shape: Shape) -> bool:
        cpus, mem, gpus, labels = shape
        if self.free_slots < 1 or (self.capacity.cpus > 0 and cpus > self.free_cpus + 1e-9):
            return False
        if (self.capacity.memory_mb > 0 and mem > self.free_mem) or gpus > len(self.free_gpus):
            return False
        return all(self.labels.get(k) == v for k, v in labels)

    @property
    def usable(self) -> bool:
        return self.online and not self.draining and self.free_slots > 0

    def take(self, shape: Shape, gpu_ids: tuple[int, ...]) -> None:
        """One slot and the shape's resources (and these GPUs) are in use."""
        self.free_slots -= 1
        self.free_cpus -= shape[0]
        self.free_mem -= shape[1]
        self.free_gpus = [g for g in self.free_gpus if g not in gpu_ids]

    def give(self, shape: Shape, gpu_ids: tuple[int, ...]) -> None:
        """What take() took is free again (GPUs only when the executor still has them)."""
        self.free_slots += 1
        self.free_cpus += shape[0]
        self.free_mem += shape[1]
        self.free_gpus = sorted({*self.free_gpus, *(g for g in gpu_ids if g in self.capacity.gpus)})

    def spread(self) -> tuple[float, int]:
        """Prefer the executor with the largest share of free slots (spreads work over the cluster); one whose
        slots are all busy ranks below every one with a free slot, however much it prefetches."""
        slots = max(self.capacity.slots, 1)
        return (self.free_slots - self.capacity.prefetch) / slots, self.free_slots
