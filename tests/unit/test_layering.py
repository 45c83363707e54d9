"""The distributions depend downward only: the import-linter contract in pyproject.toml holds and covers them all."""

from __future__ import annotations

import subprocess
import tomllib
from typing import Any

from tests.support import BIN, REPO


def importlinter_config() -> dict[str, Any]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]


def test_the_layering_contract_holds() -> None:
    """clients (dtask_cli, dtask_tui) > dtask_client > dtask_common > dtask; the services import only the library."""
    done = subprocess.run(
        [str(BIN / "lint-imports"), "--no-cache", "--no-logo"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"the layering contract is broken (`make lint-imports`):\n{done.stdout}{done.stderr}"


def test_every_package_of_every_distribution_is_under_the_contract() -> None:
    packages = {p.name for p in REPO.glob("*/*/src/*") if (p / "__init__.py").is_file()}
    assert {"dtask", "dtask_common", "dtask_client", "dtask_controller", "dtask_runner"} <= packages
    config = importlinter_config()
    assert sorted(config["root_packages"]) == sorted(packages)
    named: set[str] = set()
    for contract in config["contracts"]:
        for key in ("layers", "source_modules", "forbidden_modules", "modules"):
            for entry in contract.get(key, []):
                named |= {m.strip() for m in entry.replace(":", "|").split("|")}
    assert named == packages, f"packages in no contract: {sorted(packages - named)}"
