"""A runner whose certificates come from another CA than the controller's says so in its log."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.test_runner_e2e import controller_proc
from tests.support import free_port_range, start_dtask


def test_runner_from_another_ca_is_told_to_copy_the_ca(home: Path, other_ca: Path) -> None:
    ctl = controller_proc(home)
    lo, hi = free_port_range()
    runner = start_dtask(
        [
            "--certs",
            str(other_ca),
            "runner",
            "--controller",
            ctl.address,
            "--name",
            "r1",
            "--host",
            "127.0.0.1",
            "--port-range",
            f"{lo}-{hi}",
        ],
        home,
    )
    try:
        m = runner.wait_for(r"controller unavailable: .*")
        assert "was not issued by your CA" in m.group(0) and "copy ca.crt" in m.group(0)
    finally:
        runner.stop()
        ctl.stop()
