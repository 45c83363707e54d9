"""Hostile task files: a matrix too large to expand is refused before expanding it; long dependency
chains in any order load without recursion; cycles are still reported."""

from __future__ import annotations

import time
import tracemalloc

import pytest
from dtask_common import taskfile
from dtask_common.depgraph import find_cycle
from dtask_common.models import MAX_SUBMIT
from dtask_common.taskfile import TaskFileError


def matrix_file(keys: str, values: int) -> str:
    lines = [
        "[[task]]",
        'name = "sweep"',
        'command = "echo ' + "".join(f"{{{k}}}" for k in keys) + '"',
        "[task.matrix]",
    ]
    lines += [f"{k} = {list(range(values))}" for k in keys]
    return "\n".join(lines) + "\n"


def test_million_task_matrix_is_refused_at_once_in_little_memory() -> None:
    text = matrix_file("abcd", 32)  # 32**4 = 1,048,576 tasks
    tracemalloc.start()
    try:
        start = time.perf_counter()
        with pytest.raises(TaskFileError) as exc:
            taskfile.parse(text, "big.toml")
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < 1.0
    assert peak < 20 * 1024 * 1024
    assert exc.value.problems == [
        f"big.toml: task 'sweep' (#1): matrix: expands to 1048576 tasks (a: 32 x b: 32 x c: 32 x d: 32); "
        f"a task file may hold at most {MAX_SUBMIT} tasks (one submission): sweep fewer values, or split the "
        "file (a task in a later file can depend on tasks of an earlier one by id)"
    ]


def test_astronomical_matrix_is_refused_too() -> None:
    with pytest.raises(TaskFileError, match=r"task 'sweep' \(#1\): matrix: expands to 9\d{46} tasks"):
        taskfile.parse(matrix_file("abcdefghijklmnopqrstuvwxyz", 64), "big.toml")


def test_the_limit_counts_the_whole_file() -> None:
    tables = "".join(
        f'[[task]]\nname = "s{j}"\ncommand = "x"\n[task.matrix]\na = {list(range(100))}\nb = {list(range(20))}\n'
        for j in range(6)
    )
    tables += '[[task]]\nname = "plain"\ncommand = "x"\n'
    with pytest.raises(TaskFileError) as exc:
        taskfile.parse(tables, "t.toml")
    assert exc.value.problems[-1].startswith(
        "t.toml: expands to 12001 tasks (the largest entry, task 's0' (#1), gives 2000); a task file may hold "
        f"at most {MAX_SUBMIT} tasks"
    )


def test_a_matrix_of_exactly_the_limit_expands() -> None:
    text = (
        '[[task]]\nname = "m"\ncommand = "echo {a} {b}"\n[task.matrix]\n'
        f"a = {list(range(100))}\nb = {list(range(MAX_SUBMIT // 100))}\n"
    )
    assert len(taskfile.parse(text, "t.toml")) == MAX_SUBMIT


def chain_file(n: int) -> str:
    """A chain t0 <- t1 <- ... <- t(n-1), listed dependants first (the last task in the chain first)."""
    out = []
    for i in reversed(range(n)):
        dep = f'depends_on = ["t{i - 1}"]\n' if i else ""
        out.append(f'[[task]]\nname = "t{i}"\ncommand = "true"\n{dep}')
    return "".join(out)


@pytest.mark.parametrize("n", [1500, 5000])
def test_long_chain_listed_dependants_first_loads(n: int) -> None:
    specs = taskfile.parse(chain_file(n), "chain.toml")
    assert len(specs) == n
    assert specs[0].name == f"t{n - 1}" and specs[0].depends_on == (f"t{n - 2}",)
    assert specs[-1].name == "t0" and specs[-1].depends_on == ()


def test_long_cycle_is_reported_with_its_path() -> None:
    n = 3000
    text = chain_file(n).replace(
        'name = "t0"\ncommand = "true"\n', f'name = "t0"\ncommand = "true"\ndepends_on = ["t{n - 1}"]\n'
    )
    with pytest.raises(TaskFileError) as exc:
        taskfile.parse(text, "cycle.toml")
    assert exc.value.problems == [
        f"cycle.toml: task 't0' (#{n}): depends_on: dependency cycle t{n - 1} -> t{n - 2} -> t{n - 3} -> t{n - 4} "
        f"-> t{n - 5} -> ({n - 9} more) -> t3 -> t2 -> t1 -> t0 -> t{n - 1}"
    ]


def test_find_cycle() -> None:
    assert find_cycle({"a": ["b"], "b": ["c"], "c": []}) is None
    assert find_cycle({"a": ["b"], "b": ["a"]}) == ("b", ["a", "b", "a"])
    assert find_cycle({"a": ["x"], "b": ["c"], "c": ["d"], "d": ["b"]}) == ("d", ["b", "c", "d", "b"])
    assert find_cycle({"a": ["b", "c"], "b": ["c"], "c": []}) is None  # a diamond is no cycle
