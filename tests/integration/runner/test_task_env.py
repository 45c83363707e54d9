"""A task's environment holds nothing of the runner's own DTASK_* settings (home, config, controller, ...)."""

from __future__ import annotations

from pathlib import Path

from tests.integration.runner.fake_controller import FakeController
from tests.support import free_port_range, start_dtask


def test_task_env_has_the_attempt_and_none_of_the_runners_dtask_variables(
    home: Path, tmp_path: Path, fake: FakeController
) -> None:
    config = tmp_path / "dtask.toml"
    config.write_text("[runner]\nslots = 2\n")
    lo, hi = free_port_range()
    own = {
        "DTASK_CONFIG": str(config),
        "DTASK_CONTROLLER": fake.address,
        "DTASK_DEBUG": "1",
        "DTASK_CERT_HINT": str(home / "certs" / "runner-r1.key"),
    }
    runner = start_dtask(
        [
            "runner",
            "--controller",
            fake.address,
            "--name",
            "r1",
            "--host",
            "127.0.0.1",
            "--port-range",
            f"{lo}-{hi}",
            "--gpus",
            "0,1",
        ],
        home,
        env=own,
    )
    try:
        s = fake.session()
        assert s.hello.capacity.slots == 2  # the runner did read its DTASK_CONFIG
        s.assign("e", 3, gpu_ids=(1,), argv=["env"], env={"MINE": "yes"})
        data, fin = s.output_of("e", 3)
    finally:
        runner.stop()
    assert fin.state == 3
    env = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
    assert {k for k in env if k.startswith("DTASK_")} == {
        "DTASK_TASK_ID",
        "DTASK_ATTEMPT",
        "DTASK_RESULT_FILE",
        "DTASK_METRICS_FILE",
        "DTASK_RUNNER_TOKEN",
    }
    assert env["DTASK_TASK_ID"] == "e" and env["DTASK_ATTEMPT"] == "3" and env["MINE"] == "yes"
    assert env["CUDA_VISIBLE_DEVICES"] == "1"
    assert not [k for k, v in env.items() if str(home / "certs") in v or str(config) in v]
