"""ARCHITECTURE.md stays a true map: it names every package, and every module it names exists."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SRC_TREES = (
    "libs/dtask_common/src",
    "libs/dtask_client/src",
    "services/controller/src",
    "services/runner/src",
    "clients/cli/src",
    "clients/tui/src",
)


def architecture() -> str:
    return (REPO / "ARCHITECTURE.md").read_text()


def packages() -> list[str]:
    """Every hand-written package: a top-level one by name, a subpackage as `name/`."""
    found = []
    for tree in SRC_TREES:
        for init in sorted((REPO / tree).rglob("__init__.py")):
            rel = init.parent.relative_to(REPO / tree)
            if rel.parts[0] != "dtask":  # the generated wire code
                found.append(rel.parts[0] if len(rel.parts) == 1 else f"{rel.parts[-1]}/")
    return found


def test_every_package_is_on_the_map() -> None:
    text = architecture()
    missing = [p for p in packages() if f"`{p}" not in text and f"{p}" not in text]
    assert missing == [], f"ARCHITECTURE.md does not name these packages: {missing}"


def test_every_module_it_names_exists() -> None:
    names = set(re.findall(r"([a-z_]+\.py)\b", architecture()))
    existing = {p.name for tree in SRC_TREES for p in (REPO / tree).rglob("*.py")}
    existing |= {p.name for p in (REPO / "tests").rglob("*.py")}
    existing |= {p.name for p in (REPO / "tools").rglob("*.py")}
    assert sorted(names - existing) == [], "ARCHITECTURE.md names modules that do not exist"
