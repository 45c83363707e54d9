"""The pure dependency-graph walks: ordering with cycles broken, reachability, long chains without recursion."""

from __future__ import annotations

from dtask_common.depgraph import descendants, topological_order


def test_dependencies_come_first_in_the_graphs_order() -> None:
    order, back = topological_order({"train": ["prep"], "prep": [], "eval": ["train", "prep"], "x": ["outside"]})
    assert order == ["prep", "train", "eval", "x"] and back == []


def test_a_cycle_is_broken_at_its_closing_edge_and_every_node_is_ordered() -> None:
    order, back = topological_order({0: [1], 1: [2], 2: [0], 3: [3]})
    assert sorted(order) == [0, 1, 2, 3] and back == [(2, 0), (3, 3)]


def test_a_long_chain_needs_no_recursion() -> None:
    n = 50_000
    order, back = topological_order({i: [i + 1] if i + 1 < n else [] for i in range(n)})
    assert order == list(range(n - 1, -1, -1)) and not back
    assert sum(1 for _ in descendants(0, lambda i: [i + 1] if i + 1 < n else [])) == n - 1


def test_descendants_each_once_as_found_last_found_expanded_first() -> None:
    graph = {"a": ["b", "c"], "b": ["d"], "c": ["d", "e"], "d": ["a"], "e": []}
    asked: list[str] = []

    def children(node: str) -> list[str]:
        asked.append(node)
        return graph[node]

    assert list(descendants("a", children)) == [("a", "b"), ("a", "c"), ("c", "d"), ("c", "e")]
    assert asked == ["a", "c", "e", "d", "b"]
