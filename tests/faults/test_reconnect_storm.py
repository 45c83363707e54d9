"""The reconnect storm in small (bench/storm_bench.py with 50 runners): after a kill -9 of the controller and a
restart on the same store and port, every simulated runner (the runner's own ControllerSession, one certificate each) is
back with its running attempt reconciled: nothing lost, cancelled or dispatched again."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import storm_bench


@pytest.mark.timeout(60)
def test_fifty_runners_come_back_reconciled_after_a_controller_kill9(tmp_path: Path) -> None:
    r = storm_bench.run(runners=50, clients=1, root=tmp_path)
    table = storm_bench.report(r)
    assert not r.problems, table
    assert r.reconciled == 50 and len(r.reconnect_s) == 50, table
    assert r.all_s < 15, table  # the bench holds 500 runners to 10 s; this machine is shared with other work
