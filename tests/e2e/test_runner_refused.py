"""A runner the controller refuses for its version stops with the reason instead of retrying forever."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.e2e.test_runner_e2e import client, controller_proc
from tests.support import Proc, free_port_range

# The runner process as installed, speaking protocol 99 (as a runner of another dtask release would).
OTHER_PROTOCOL = (
    "import sys, dtask_common; dtask_common.PROTOCOL_VERSION = 99; "
    "from dtask_cli import main; sys.argv[0] = 'dtask'; sys.exit(main())"
)


def test_runner_of_another_protocol_stops_with_the_reason(home: Path) -> None:
    ctl = controller_proc(home)
    lo, hi = free_port_range()
    env = dict(os.environ, DTASK_HOME=str(home), PYTHONUNBUFFERED="1")
    env.pop("DTASK_CONFIG", None)
    popen = subprocess.Popen(
        [
            sys.executable,
            "-c",
            OTHER_PROTOCOL,
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
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        start_new_session=True,
    )
    proc = Proc(popen)
    proc.start_reader()
    try:
        assert popen.wait(30) == 1  # it stops: a reconnect cannot change its version
        m = proc.wait_for(r"ERROR .*protocol.*")
        assert "FAILED_PRECONDITION" in m.group(0) and "protocol 99" in m.group(0) and "not retrying" in m.group(0)
        out = "".join(proc.lines)
        assert "error: the controller speaks another protocol version" in out
        assert "reconnecting to" not in out and "Traceback" not in out
        with client(home, ctl.address) as c:
            assert [e.name for e in c.executors()] == []
    finally:
        proc.stop()
        ctl.stop()
