"""A long dependency chain, listed dependants first, goes through a real controller end to end."""

from __future__ import annotations

from pathlib import Path

import pytest
from dtask_client import Controller
from dtask_common.models import TaskState

from tests.support import Proc
from tests.unit.test_taskfile_limits import chain_file


@pytest.mark.parametrize("n", [1500, 5000])
def test_long_chain_submits_and_fails_through(controller: Proc, home: Path, tmp_path: Path, n: int) -> None:
    path = tmp_path / "chain.toml"
    path.write_text(chain_file(n))
    with Controller(controller.address, certs=home / "certs", timeout=60) as c:
        ids = c.submit(path)
        assert len(ids) == n
        root, last = ids[-1], ids[0]  # t0 is listed last, t(n-1) first
        assert c.task(last).spec.depends_on == (f"t{n - 2}",)
        assert c.task(last).state is TaskState.PENDING
        c.cancel(root)  # the whole chain fails behind it, one dependency after the other
        end = c.task(last)
        assert end.state is TaskState.FAILED
        assert end.error == f"dependency failed: task {ids[1]} is failed"
