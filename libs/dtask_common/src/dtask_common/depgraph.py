"""Dependency graphs: cycle search, ordering and reachability without recursion, so chains of any length are fine."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from typing import TypeVar

K = TypeVar("K", bound=Hashable)


def find_cycle(graph: Mapping[str, Sequence[str]]) -> tuple[str, list[str]] | None:
    """The first dependency cycle: (the task whose dependency closes it, [a, b, ..., a]), or None.

    graph maps a task to the tasks it depends on; dependencies outside the graph are ignored.
    Depth-first in the graph's order, with an explicit stack instead of recursion.
    """
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    for root in graph:
        if root in state:
            continue
        state[root] = 1
        path = [root]
        todo: list[Iterator[str]] = [iter(graph[root])]
        while todo:
            dep = next((d for d in todo[-1] if d in graph and state.get(d) != 2), None)
            if dep is None:
                state[path.pop()] = 2
                todo.pop()
            elif state.get(dep) == 1:
                return path[-1], path[path.index(dep) :] + [dep]
            else:
                state[dep] = 1
                path.append(dep)
                todo.append(iter(graph[dep]))
    return None


def topological_order(graph: Mapping[K, Sequence[K]]) -> tuple[list[K], list[tuple[K, K]]]:
    """Every node of graph, each after its dependencies, and the edges (node, dependency) that close a cycle.

    graph maps a node to the nodes it depends on; dependencies outside the graph are ignored.
    Depth-first from each node in the graph's order, dependencies in their given order; a cycle is
    broken at its closing edge (both are still ordered).
    """
    order: list[K] = []
    back: list[tuple[K, K]] = []
    state: dict[K, int] = {}  # 1 on the current path, 2 done
    for root in graph:
        if root in state:
            continue
        state[root] = 1
        stack: list[tuple[K, Iterator[K]]] = [(root, iter(graph[root]))]
        while stack:
            node, deps = stack[-1]
            dep = next((d for d in deps if d in graph), None)
            if dep is None:
                state[node] = 2
                order.append(node)
                stack.pop()
            elif state.get(dep) == 1:
                back.append((node, dep))
            elif dep not in state:
                state[dep] = 1
                stack.append((dep, iter(graph[dep])))
    return order, back


def descendants(root: K, children: Callable[[K], Iterable[K]]) -> Iterator[tuple[K, K]]:
    """(parent, child) for every node reachable from root, each once, as found; children(node) is asked
    once per node, when the walk reaches it (last found, first expanded)."""
    seen = {root}
    stack = [root]
    while stack:
        node = stack.pop()
        for child in children(node):
            if child in seen:
                continue
            seen.add(child)
            yield node, child
            stack.append(child)
