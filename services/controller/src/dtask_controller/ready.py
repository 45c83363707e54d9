"""Ready tasks: one heap per resource shape, by priority then submission order, cleaned lazily (no I/O)."""

from __future__ import annotations

import heapq
from collections.abc import Callable

from dtask_controller.placement import Shape

Head = tuple[int, int, Shape]  # (-priority, submission order, shape) of a heap's first task


class ReadyQueue:
    """Pending tasks whose dependencies are met, so a dispatch round never walks tasks that cannot run.

    A task leaves its heap lazily: a heap's head is dropped once `is_ready` says it is no longer ready
    (dispatched, cancelled, forgotten), so no removal ever searches a heap."""

    def __init__(self, is_ready: Callable[[str], bool]) -> None:
        self._heaps: dict[Shape, list[tuple[int, int, str]]] = {}
        self._is_ready = is_ready
        self.arrivals: list[str] | None = None  # when a list: the ids pushed since it was last taken

    def push(self, shape: Shape, priority: int, seq: int, task_id: str) -> None:
        heapq.heappush(self._heaps.setdefault(shape, []), (-priority, seq, task_id))
        if self.arrivals is not None:
            self.arrivals.append(task_id)

    def heads(self) -> list[Head]:
        """The first ready task of every shape, as a heap of heads (the best first)."""
        heads: list[Head] = []
        for shape in self._heaps:
            if (head := self.head(shape)) is not None:
                heads.append(head)
        heapq.heapify(heads)
        return heads

    def head(self, shape: Shape) -> Head | None:
        """The first ready task of one shape, or None when it has none."""
        heap = self._heaps[shape]
        self._clean(heap)
        return (heap[0][0], heap[0][1], shape) if heap else None

    def pop(self, shape: Shape) -> str:
        """Take the first ready task of a shape (head(shape) said there is one)."""
        return heapq.heappop(self._heaps[shape])[2]

    def _clean(self, heap: list[tuple[int, int, str]]) -> None:
        while heap and not self._is_ready(heap[0][2]):
            heapq.heappop(heap)
