"""The wheels of `make dist`, installed offline (`pip install --no-index`) into fresh venvs: a runner from
them runs a task for a controller of the checkout; the controller, the CLI and the TUI start from them."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from dtask_client import Controller
from dtask_common.models import TaskSpec, TaskState

from tests.integration.test_join import start_joinable, token
from tests.support import REPO, Proc, free_port_range, spawn, start_controller
from tools import dist

# The third-party wheels are downloaded once (pinned, from PyPI) and kept between runs under build/.
WHEELHOUSE = REPO / "build" / "test-wheelhouse"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def _wheelhouse() -> Path:
    """WHEELHOUSE holding every pinned runtime dependency (downloaded only when the pins changed)."""
    stamp = WHEELHOUSE / ".pins"
    wanted = "\n".join(dist.runtime_pins())
    if stamp.is_file() and stamp.read_text() == wanted:
        return WHEELHOUSE
    try:
        dist.wheelhouse(WHEELHOUSE)
    except SystemExit as exc:
        pytest.skip(f"the pinned dependency wheels could not be downloaded (no network?): {exc}")
    stamp.write_text(wanted)
    return WHEELHOUSE


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """dtask's own wheels (built now, no sdists) and the wheelhouse of its dependencies."""
    out = tmp_path_factory.mktemp("dist")
    built = dist.build(out, sdist=False)
    assert sorted(p.name.split("-")[0] for p in built) == sorted(
        ["dtask_common", "dtask_client", "dtask_controller", "dtask_runner", "dtask_cli", "dtask_tui"]
    )
    return out, _wheelhouse()


def fresh_venv(where: Path, wheels: tuple[Path, Path], *projects: str) -> Path:
    """A new venv (no pip of its own) with projects installed from the wheels alone; its bin directory."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True, timeout=60)
    own, house = wheels
    cmd = [sys.executable, "-m", "pip", "--python", str(where / "bin" / "python"), "install", "-q"]
    cmd += ["--disable-pip-version-check", "--no-index", "--find-links", str(own), "--find-links", str(house)]
    done = subprocess.run([*cmd, *projects], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    return where / "bin"


def clean_env(home: Path) -> dict[str, str]:
    """The environment of a program of a fresh venv: nothing of the checkout (no PYTHONPATH, no .venv on PATH)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "DTASK_"))}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", os.defpath).split(os.pathsep) if str(REPO) not in p)
    return {**env, "DTASK_HOME": str(home), "PYTHONUNBUFFERED": "1"}


def start(argv: list[str], home: Path, cwd: Path) -> Proc:
    return spawn(argv, clean_env(home), cwd=cwd)


@pytest.fixture
def controller_here(home: Path) -> Iterator[Proc]:
    proc = start_controller(home)
    try:
        yield proc
    finally:
        proc.stop()


def test_a_runner_from_the_wheels_alone_runs_a_task(
    wheels: tuple[Path, Path], home: Path, tmp_path: Path, controller_here: Proc
) -> None:
    bin_dir = fresh_venv(tmp_path / "venv", wheels, "dtask-runner")
    where = subprocess.run(
        [
            str(bin_dir / "python"),
            "-c",
            "import dtask.v1.common_pb2 as p, dtask_runner as r; print(r.__file__, p.__file__)",
        ],
        cwd=tmp_path,
        env=clean_env(home),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert where.returncode == 0, where.stderr
    assert all(path.startswith(str(tmp_path / "venv")) for path in where.stdout.split()), where.stdout
    installed = {p.name.split("-")[0] for p in (tmp_path / "venv").glob("lib/python*/site-packages/*.dist-info")}
    assert {"dtask_runner", "dtask_common", "dtask_cli"} <= installed
    assert not installed & {"dtask_controller", "dtask_tui", "pytest", "nvidia_ml_py"}  # GPU extra stays optional
    unit = subprocess.run(
        [str(bin_dir / "dtask-runner"), "--controller", "ctl:50051", "--print-systemd-unit"],
        cwd=tmp_path,
        env=clean_env(home),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert f"ExecStart={bin_dir / 'dtask-runner'} --controller ctl:50051\n" in unit.stdout, unit.stdout + unit.stderr
    lo, hi = free_port_range()
    runner = start(
        [str(bin_dir / "dtask-runner"), "--controller", controller_here.address, "--name", "r1"]
        + ["--host", "127.0.0.1", "--port-range", f"{lo}-{hi}", "--set", "runner.reconnect_max_s=0.5"],
        home,
        tmp_path,
    )
    try:
        runner.wait_for(r"connected to controller .* as r1")
        with Controller(controller_here.address, certs=home / "certs", timeout=10) as c:
            (tid,) = c.submit(TaskSpec(name="from-wheels", shell="echo hello from $DTASK_TASK_ID"))
            (task,) = c.wait([tid], timeout=30)
            assert task.state is TaskState.SUCCEEDED, task
            assert task.attempts[-1].executor == "r1"
            assert f"hello from {tid}" in b"".join(c.logs(tid)).decode()
    finally:
        assert runner.stop() == 0, "".join(runner.lines)


def test_the_controller_cli_and_tui_install_from_the_wheels(
    wheels: tuple[Path, Path], home: Path, tmp_path: Path
) -> None:
    bin_dir = fresh_venv(tmp_path / "venv", wheels, "dtask-controller", "dtask-tui")
    for argv, expect in (
        (["dtask", "--version"], "dtask 0.1.0"),
        (["dtask-controller", "--help"], "Run the controller in the foreground"),
        (["dtask", "controller", "--help"], "Run the controller in the foreground"),
        (["dtask-tui", "--help"], "Usage"),
        (["dtask", "runner", "--help"], "pip install dtask-runner"),
    ):
        done = subprocess.run(
            [str(bin_dir / argv[0]), *argv[1:]],
            cwd=tmp_path,
            env=clean_env(home),
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert expect in done.stdout + done.stderr, (argv, done.stdout, done.stderr)


def test_the_readme_steps_join_a_runner_installed_from_the_wheels(
    wheels: tuple[Path, Path], home: Path, tmp_path: Path
) -> None:
    """README "Running on several machines", step by step: on the controller's machine (its DTASK_HOME holds the
    CA key) a controller with --allow-join and `dtask certs token`; on the runner's machine (a DTASK_HOME of its
    own, empty) the runner package from the wheels alone and one join command; then a task runs there."""
    ctl, join = start_joinable(home, "--allow-join")
    try:
        ctl.wait_for(r"accepting joins on 127\.0\.0\.1:\d+")
        t = token(home, "runner", "gpu1")
        bin_dir = fresh_venv(tmp_path / "venv", wheels, "dtask-runner")
        box = tmp_path / "gpu-box"
        lo, hi = free_port_range()
        runner = start(
            [str(bin_dir / "dtask"), "runner", "--join", join, "--token", t]
            + ["--host", "127.0.0.1", "--port-range", f"{lo}-{hi}", "--label", "who=gpu1"],
            box,
            tmp_path,
        )
        try:
            runner.wait_for(rf"connected to controller {ctl.address} .* as gpu1")
            assert (box / "certs" / "runner-gpu1.key").is_file()
            assert not (home / "certs" / "runner-gpu1.key").exists()  # the key never left the runner's machine
            with Controller(ctl.address, certs=home / "certs", timeout=10) as c:
                (tid,) = c.submit(TaskSpec(name="joined", shell="echo joined", labels={"who": "gpu1"}))
                (task,) = c.wait([tid], timeout=30)
                assert task.state is TaskState.SUCCEEDED and task.attempts[-1].executor == "gpu1", task
        finally:
            runner.stop()
    finally:
        ctl.stop()
