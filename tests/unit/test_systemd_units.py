"""The systemd units: the generators' (`--print-systemd-unit`) and the shipped ones in deploy/systemd/, which say
the same; `systemd-analyze verify` accepts them where it is installed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from dtask_common.systemd import Unit, render

from tests.support import BIN, REPO

DEPLOY = REPO / "deploy" / "systemd"
SHIPPED = {
    "dtask-controller.service": Unit("controller", ["/opt/dtask/bin/dtask-controller"], "/var/lib/dtask", user="dtask"),
    "dtask-runner@.service": Unit(
        "runner",
        ["/opt/dtask/bin/dtask-runner", "--name", "%i"],
        "/var/lib/dtask",
        user="dtask",
        config="/var/lib/dtask/dtask.toml",
    ),
}


def body(text: str) -> str:
    """The unit from its [Unit] line on (the shipped files begin with how to install them)."""
    return text[text.index("[Unit]") :]


def settings(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.startswith("#"):
            out.setdefault(key, []).append(value)
    return out


def generated(service: str, home: Path, *args: str) -> str:
    done = subprocess.run(
        [str(BIN / "dtask"), service, *args, "--print-systemd-unit"],
        env={"DTASK_HOME": str(home), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_the_shipped_units_are_what_the_generator_writes(name: str) -> None:
    text = (DEPLOY / name).read_text()
    assert body(text) == body(render(SHIPPED[name]))


def test_the_runner_unit_lets_the_runner_end_its_own_tasks(tmp_path: Path) -> None:
    unit = settings(generated("runner", tmp_path, "--controller", "ctl.lab:50051", "--label", "zone=a b"))
    assert unit["ExecStart"] == [f"{BIN / 'dtask-runner'} --controller ctl.lab:50051 --label 'zone=a b'"]
    assert unit["Environment"] == [f"DTASK_HOME={tmp_path}"]
    assert unit["Restart"] == ["on-failure"] and unit["KillMode"] == ["mixed"] and unit["Delegate"] == ["yes"]
    assert int(unit["TimeoutStopSec"][0]) > 10  # longer than runner.kill_grace_s
    controller = settings(generated("controller", tmp_path, "--port-range", "50051-50059"))
    assert controller["ExecStart"] == [f"{BIN / 'dtask-controller'} --port-range 50051-50059"]
    assert controller["Restart"] == ["on-failure"] and "Delegate" not in controller


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here")
def test_systemd_analyze_verify_accepts_every_unit(tmp_path: Path) -> None:
    units = tmp_path / "units"
    units.mkdir()
    # The shipped units name /opt/dtask and the user dtask: verified with this install's program instead.
    for name in SHIPPED:
        text = (DEPLOY / name).read_text().replace("/opt/dtask/bin/", f"{BIN}/").replace("User=dtask\n", "")
        (units / name).write_text(text)
    (units / "dtask-runner@r1.service").symlink_to(units / "dtask-runner@.service")
    (units / "generated-runner.service").write_text(generated("runner", tmp_path, "--name", "r1"))
    (units / "generated-controller.service").write_text(generated("controller", tmp_path))
    names = ["dtask-controller.service", "dtask-runner@r1.service", "generated-runner.service"]
    names.append("generated-controller.service")
    done = subprocess.run(
        ["systemd-analyze", "verify", *(str(units / n) for n in names)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    problems = [line for line in (done.stdout + done.stderr).splitlines() if "dtask" in line or "generated" in line]
    assert done.returncode == 0 and not problems, done.stdout + done.stderr
