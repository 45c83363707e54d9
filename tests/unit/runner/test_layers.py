"""The runner stands on the library alone: no module of dtask_runner imports the client, the controller or a UI."""

from __future__ import annotations

import ast
from pathlib import Path

import dtask_runner

OURS_ALLOWED = {"dtask", "dtask_common", "dtask_runner"}  # dtask: the generated wire contract in dtask_common


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_the_runner_imports_only_the_library_of_ours() -> None:
    package = Path(dtask_runner.__file__).parent
    modules = sorted(package.glob("*.py"))
    assert len(modules) > 10
    wrong = {p.name: sorted(n for n in imported(p) if n.startswith("dtask") and n not in OURS_ALLOWED) for p in modules}
    assert {k: v for k, v in wrong.items() if v} == {}
