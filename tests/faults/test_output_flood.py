"""Output floods through a real runner and controller: a 50 MB line without a newline and 20 MB of binary.
The runner keeps sending usage (never dead), `dtask logs` gives the tail, the controller holds only the tail."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
from dtask_common import events as ev
from dtask_common.models import TaskState

from tests.faults.helpers import client, controller_proc, stop_all
from tests.support import BIN, runner_proc

TAIL = 256 * 1024
DEAD_AFTER_S = 2.0
# Paced over ~3 s so that the flood spans several usage intervals.
LINE = (
    "import sys, time\nw = sys.stdout.buffer.write\n"
    "for _ in range(100):\n    w(b'0123456789' * 50000); sys.stdout.flush(); time.sleep(0.03)\n"
    "w(b'<END>'); sys.stdout.flush()\n"
)  # 50,000,005 bytes, no newline
# tqdm-style redraws (\r, no newline): 100 bursts of 10,000, the progress parser's busiest input.
REDRAWS = (
    "import sys, time\nw = sys.stdout.buffer.write\n"
    "for b in range(100):\n"
    "    w(b''.join(b'\\rtrain: %3d%%|####      | %d/1000000 [00:01<00:02, 3.50it/s]' % (b, b * 10000 + i)\n"
    "             for i in range(10000))); sys.stdout.flush(); time.sleep(0.03)\n"
    "w(b'\\rtrain: 100%|##########| 1000000/1000000 [00:03<00:00, 3.50it/s]\\n'); sys.stdout.flush()\n"
)
BINARY = (
    "import os, sys, time\n"
    "for _ in range(80):\n    sys.stdout.buffer.write(os.urandom(250000)); sys.stdout.flush(); time.sleep(0.035)\n"
)
LINE_BYTES = b"0123456789" * 5_000_000 + b"<END>"


def dtask_logs(home: Path, address: str, task_id: str) -> bytes:
    env = dict(os.environ, DTASK_HOME=str(home))
    env.pop("DTASK_CONFIG", None)
    done = subprocess.run(
        [str(BIN / "dtask"), "--controller", address, "logs", "--tail-bytes", str(TAIL), task_id],
        env=env,
        capture_output=True,
        timeout=20,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_floods_keep_the_runner_alive_and_the_controller_bounded(home: Path, tmp_path: Path) -> None:
    """One after the other on one runner: a 50 MB line, 40+ MB of tqdm redraws, 20 MB of binary."""
    logs_dir = tmp_path / "logs"
    ctl = controller_proc(home, f"controller.output_tail_bytes={TAIL}", dead_after_s=DEAD_AFTER_S, lost_after_s=10)
    r1 = runner_proc(home, ctl.address, "r1", "--log-dir", str(logs_dir))
    usage: list[float] = []
    stop = threading.Event()
    watching = threading.Event()

    def watch() -> None:
        with client(home, ctl.address) as w:
            for e in w.watch(include_usage=True, include_progress=False):
                watching.set()
                if isinstance(e.body, ev.UsageEvent) and e.body.executor == "r1":
                    usage.append(time.monotonic())
                if stop.is_set():
                    return

    try:
        threading.Thread(target=watch, daemon=True).start()
        assert watching.wait(10)
        ctl_rss = psutil.Process(ctl.popen.pid)  # the dtask entry point runs the controller in-process
        rss_before = ctl_rss.memory_info().rss
        for kind, script in (("line", LINE), ("redraws", REDRAWS), ("binary", BINARY)):
            with client(home, ctl.address) as c:
                tid = c.add_task([sys.executable, "-c", script], name=kind)
                started = time.monotonic()
                [t] = c.wait([tid], timeout=60)
                ended = time.monotonic()
                assert t.state is TaskState.SUCCEEDED, t
                rss_after = ctl_rss.memory_info().rss
                on_disk = (logs_dir / f"{tid}.1.log").read_bytes()
                if kind == "line":
                    assert on_disk == LINE_BYTES
                elif kind == "binary":
                    assert len(on_disk) == 20_000_000
                else:
                    assert len(on_disk) > 40_000_000
                    assert on_disk.endswith(b"1000000/1000000 [00:03<00:00, 3.50it/s]\n")
                tail = b"".join(c.logs(tid, tail_bytes=TAIL))
                assert 0 < len(tail) <= TAIL and on_disk.endswith(tail), kind
                if kind == "line":
                    assert tail.endswith(b"56789<END>")
            assert dtask_logs(home, ctl.address, tid) == tail
            # Usage kept arriving through the flood: never a gap that makes the executor dead.
            during = [u for u in usage if started - 1 <= u <= ended + 1]
            gaps = [b - a for a, b in zip(during, during[1:], strict=False)]
            assert len(during) >= 2 and max(gaps) < DEAD_AFTER_S, (kind, ended - started, gaps)
            assert not any("executor r1 dead" in line for line in ctl.lines), "".join(ctl.lines)
            # The controller held tails, not the output: far less than the 110 MB that went through.
            assert rss_after - rss_before < 40 * 1024 * 1024, (kind, rss_before, rss_after)
    finally:
        stop.set()
        stop_all(r1, ctl)
