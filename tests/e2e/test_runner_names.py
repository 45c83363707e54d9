"""Two runners under one name: on one machine the second refuses to start; on two machines the
runner that was replaced stops with the reason instead of fighting over the name."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.e2e.test_runner_e2e import client, controller_proc, runner_proc
from tests.support import free_port_range, start_dtask


def test_second_runner_with_the_same_name_and_home_refuses(home: Path) -> None:
    ctl = controller_proc(home)
    first = runner_proc(home, ctl.address, "r1")
    try:
        lo, hi = free_port_range()
        second = start_dtask(
            [
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
            listen=False,
        )
        assert second.popen.wait(30) == 1
        out = "".join(second.lines)
        assert f"another runner (pid {first.popen.pid}) is already running as r1" in out
        assert "--name" in out and "Traceback" not in out
        assert first.popen.poll() is None
    finally:
        first.stop()
        ctl.stop()


def test_replaced_runner_stops_with_the_reason(home: Path, tmp_path: Path) -> None:
    other_home = tmp_path / "other-machine"
    shutil.copytree(home / "certs", other_home / "certs")
    ctl = controller_proc(home)
    first = runner_proc(home, ctl.address, "r1")
    second = None
    try:
        second = runner_proc(other_home, ctl.address, "r1")
        assert first.popen.wait(30) == 1
        out = "".join(first.lines)
        assert "another runner process connected as executor r1" in out and "another --name" in out
        assert "Traceback" not in out
        ctl.wait_for(r"a different runner process took over the name")
        with client(home, ctl.address) as c:
            assert [(e.name, e.state.value) for e in c.executors()] == [("r1", "idle")]
        assert second.popen.poll() is None
    finally:
        for p in (second, first, ctl):
            if p is not None:
                p.stop()
