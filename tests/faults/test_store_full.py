"""The controller's disk fills up: a submission that cannot be stored fails whole with a clear error, the
controller keeps serving, and works again once there is room."""

from __future__ import annotations

from pathlib import Path

import pytest
from dtask_common.client import ResourceExhausted
from dtask_common.models import TaskSpec

from tests.faults.helpers import client, fill_fs, start_on_small_fs
from tests.support import LISTEN_RE, free_port_range


def test_submission_on_a_full_disk_fails_whole_and_the_controller_keeps_serving(home: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    lo, hi = free_port_range()
    ctl = start_on_small_fs(["controller", "--host", "127.0.0.1", "--port-range", f"{lo}-{hi}",
                             "--store", str(data / "controller.db")], home, data, size="4m")
    try:
        m = ctl.wait_for(LISTEN_RE.pattern)
        address = f"127.0.0.1:{m.group(2)}"
        with client(home, address, timeout=30) as c:
            c.pause()
            first = c.submit([TaskSpec(name=f"a{i}", shell="true", tags=("a",)) for i in range(100)])
            fill_fs(ctl, data)
            big = [TaskSpec(name=f"b{i}", shell="echo " + "x" * 200, tags=("b",)) for i in range(5000)]
            with pytest.raises(ResourceExhausted) as err:
                c.submit(big)
            assert str(data / "controller.db") in str(err.value) and "full" in str(err.value), err.value
            # Still serving, the failed batch is not there, the earlier one is.
            assert [t.id for t in c.tasks(tag="a")] == first
            assert c.tasks(tag="b") == []
            assert c.queue().pending == 100
            (Path(f"/proc/{ctl.popen.pid}/root") / data.relative_to("/") / "filler").unlink()
            again = c.submit(big)
            assert len(again) == 5000 and c.queue().pending == 5100
        assert not any("Traceback" in line for line in ctl.lines), "".join(ctl.lines)
    finally:
        ctl.stop()
