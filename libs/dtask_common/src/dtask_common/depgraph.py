"""Dependency graphs of task names: cycle search without recursion, so chains of any length are fine."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence


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
                return path[-1], path[path.index(dep):] + [dep]
            else:
                state[dep] = 1
                path.append(dep)
                todo.append(iter(graph[dep]))
    return None
