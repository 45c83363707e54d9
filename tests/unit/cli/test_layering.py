"""The CLI, the shell and the TUI speak to the controller only through dtask_client."""

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
