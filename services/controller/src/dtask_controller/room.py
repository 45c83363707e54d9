"""Executors that may have room for work, and the best one for a shape, without walking every executor (no I/O)."""

from __future__ import annotations

import heapq

from dtask_controller.placement import Executor, Shape

Entry = tuple[float, int, int, Executor]  # (-share of free slots, -free slots, join rank, executor)


class Room:
    """Every usable executor is among the open ones: the scheduler reopens an executor whenever it may have
    gained room (joined, a slot given back, online again, drain changed); a dispatch round drops the rest.

    With 1,000 busy executors a round then costs what the few with room cost, not a walk over all of them."""

    def __init__(self) -> None:
        self._rank: dict[str, int] = {}  # join order: ties go to the executor that joined first
        self._open: dict[str, Executor] = {}

    def reopen(self, ex: Executor) -> None:
        self._rank.setdefault(ex.name, len(self._rank))
        self._open[ex.name] = ex

    def usable(self) -> list[Entry]:
        """The usable executors as a heap, the best spread first (ties: joined first); the rest are dropped."""
        heap: list[Entry] = []
        for name, ex in list(self._open.items()):
            if ex.usable:
                share, free = ex.spread()
                heap.append((-share, -free, self._rank[name], ex))
            else:
                del self._open[name]
        heapq.heapify(heap)
        return heap

    def put_back(self, heap: list[Entry], ex: Executor) -> None:
        """An executor taken by best() goes back with its new spread while usable; full, it is no longer open."""
        if ex.usable:
            share, free = ex.spread()
            heapq.heappush(heap, (-share, -free, self._rank[ex.name], ex))
        else:
            self._open.pop(ex.name, None)


def best(heap: list[Entry], shape: Shape) -> Executor | None:
    """Take from the heap the best executor the shape fits (as max(spread) over those that fit, first joined on
    ties); the ones that do not fit stay in the heap."""
    passed: list[Entry] = []
    found = None
    while heap:
        entry = heapq.heappop(heap)
        if entry[3].fits(shape):
            found = entry[3]
            break
        passed.append(entry)
    for entry in passed:
        heapq.heappush(heap, entry)
    return found
