"""A real `dtask runner` batches what is ready at once: results of attempts that end together go up as one
RunnerBatch, a lone message goes as itself; a ControllerBatch of commands is taken in order."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from dtask.v1 import common_pb2 as cpb
from dtask.v1 import controller_pb2 as pb

from tests.integration.runner.fake_controller import FakeController
from tests.integration.runner.helpers import gone
from tests.integration.runner.test_runner_session import start_runner


def test_results_ready_together_go_up_as_one_batch_and_a_lone_one_as_itself(
    home: Path, tmp_path: Path, fake: FakeController
) -> None:
    proc = start_runner(home, fake.address, "--slots", "4")
    try:
        s = fake.session()
        s.assign("solo", 1, shell="true")
        assert s.next("finished", lambda f: f.task_id == "solo").state == cpb.TASK_STATE_SUCCEEDED
        assert not any("finished" in kinds for kinds in s.batches), s.batches  # nothing waited for company

        gate = tmp_path / "gate"
        for t in ("a", "b", "c", "d"):
            s.assign(t, 1, shell=f"until [ -e {gate} ]; do sleep 0.01; done")
        pids = [int(proc.wait_for(rf"attempt {t}/1 started: pid (\d+)").group(1)) for t in ("a", "b", "c", "d")]
        # The runner stands still while all four end, so their results are ready at the same moment.
        os.kill(proc.popen.pid, signal.SIGSTOP)
        try:
            gate.touch()
            assert gone(pids)
        finally:
            os.kill(proc.popen.pid, signal.SIGCONT)
        done = {s.next("finished", lambda f: f.task_id in "abcd").task_id for _ in range(4)}
        assert done == {"a", "b", "c", "d"}
        # (how many share one batch depends on how the runner's event loop takes the four ends in)
        assert any(kinds.count("finished") >= 2 for kinds in s.batches), s.batches
        results = home / "runner" / "r1" / "results"
        deadline = time.monotonic() + 10
        while list(results.glob("*.json")) and time.monotonic() < deadline:  # acked: the runner forgets them
            time.sleep(0.02)
        assert list(results.glob("*.json")) == []
    finally:
        proc.stop()


def test_a_batch_of_commands_is_taken_in_order(fake: FakeController, home: Path) -> None:
    proc = start_runner(home, fake.address, "--slots", "2")
    try:
        s = fake.session()
        assign = pb.Assign(task_id="x", attempt=1, spec=cpb.TaskSpec(shell="sleep 600"))
        s.send(
            pb.ControllerMessage(
                batch=pb.ControllerBatch(
                    messages=[
                        pb.ControllerMessage(assign=assign),
                        pb.ControllerMessage(assign=pb.Assign(task_id="y", attempt=1, spec=cpb.TaskSpec(shell="true"))),
                        pb.ControllerMessage(cancel=pb.Cancel(task_id="x", attempt=1, reason="changed my mind")),
                    ]
                )
            )
        )
        fins = {f.task_id: f for f in (s.next("finished") for _ in range(2))}
        assert fins["y"].state == cpb.TASK_STATE_SUCCEEDED
        assert fins["x"].state == cpb.TASK_STATE_CANCELLED and "changed my mind" in fins["x"].error
    finally:
        proc.stop()
