"""The layers: clients reach the controller only through dtask_client, and every distribution imports downward."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
GRPC = re.compile(r"^\s*(?:import grpc|from grpc\b|from dtask\.v1 import|import dtask\.v1)|_pb2|Stub\(", re.M)


@pytest.mark.parametrize("root", ["clients/cli/src/dtask_cli", "clients/tui/src/dtask_tui"])
def test_no_grpc_outside_the_client(root: str) -> None:
    files = sorted((REPO / root).rglob("*.py"))
    assert files, f"no sources under {root}"
    offenders = [f"{f.relative_to(REPO)}: {m.group(0).strip()}" for f in files for m in GRPC.finditer(f.read_text())]
    assert not offenders, offenders


def _imports(root: str, packages: tuple[str, ...]) -> list[str]:
    """`file: import` for every import of one of packages in the sources under root."""
    pattern = re.compile(rf"^\s*(?:from|import) ({'|'.join(packages)})\b", re.M)
    files = sorted((REPO / root).rglob("*.py"))
    assert files, f"no sources under {root}"
    return [f"{f.relative_to(REPO)}: {m.group(0).strip()}" for f in files for m in pattern.finditer(f.read_text())]


@pytest.mark.parametrize(
    ("root", "forbidden"),
    [
        ("clients/cli/src/dtask_cli", ("dtask_controller", "dtask_runner", "dtask_tui")),
        ("clients/tui/src/dtask_tui", ("dtask_cli", "dtask_controller", "dtask_runner")),
        ("services/controller/src/dtask_controller", ("dtask_cli", "dtask_tui", "dtask_client", "dtask_runner")),
        ("services/runner/src/dtask_runner", ("dtask_cli", "dtask_tui", "dtask_client", "dtask_controller")),
        ("libs/dtask_client/src/dtask_client", ("dtask_cli", "dtask_tui", "dtask_controller", "dtask_runner")),
        (
            "libs/dtask_common/src/dtask_common",
            ("dtask_cli", "dtask_tui", "dtask_client", "dtask_controller", "dtask_runner", "click"),
        ),
    ],
)
def test_each_distribution_imports_only_downward(root: str, forbidden: tuple[str, ...]) -> None:
    offenders = _imports(root, forbidden)
    assert not offenders, offenders


@pytest.mark.parametrize(
    "path", ["services/controller/src/dtask_controller/command.py", "services/runner/src/dtask_runner/command.py"]
)
def test_the_service_commands_need_no_client(path: str) -> None:
    source = (REPO / path).read_text()
    assert not re.search(r"^\s*(?:from|import) (dtask_client|dtask_cli)\b", source, re.M)
