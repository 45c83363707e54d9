"""The gRPC side (servicer, streams, runner sessions, main) reaches the core only through its commands, reports and queries."""

from __future__ import annotations

import ast
from pathlib import Path

import dtask_controller
import pytest

PACKAGE = Path(dtask_controller.__file__).parent
CORE_STATE = {
    "store",
    "scheduler",
    "registry",
    "tails",
    "fanout",
    "hub",
    "deaths",
    "sessions",
    "dirty_progress",
    "finished_counts",
    "task_waiters",
}


@pytest.mark.parametrize("module", ["servicer.py", "streams.py", "runner_session.py", "main.py"])
def test_no_reach_into_the_cores_state(module: str) -> None:
    tree = ast.parse((PACKAGE / module).read_text())
    reached = sorted({n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr in CORE_STATE})
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not reached, f"{module} reaches into the core: {reached}"
    assert module == "main.py" or "sqlite3" not in imported  # main maps a damaged store to its message
