"""A task's environment on real runners: `venv = ...` and `conda = ...` give it that environment's python,
a missing one fails the attempt (not the runner), a runner's --task-env-path is every task's default; and
runner-side paths: {path:code} resolved on the one runner that declares it, a task kept from the other."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from dtask_client import Controller
from dtask_common.models import Task, TaskSpec, TaskState

from tests.support import Proc, copy_certs, free_port_range, make_certs, start_controller, start_dtask

pytestmark = pytest.mark.timeout(120)

SHOW = (
    "import os, sys; print('prefix', sys.prefix); print('venv', os.environ.get('VIRTUAL_ENV', '-')); "
    "print('conda', os.environ.get('CONDA_PREFIX', '-')); print('path0', os.environ['PATH'].split(os.pathsep)[0]); "
    "print('pythonhome', os.environ.get('PYTHONHOME', '-'))"
)


def make_venv(where: Path) -> Path:
    """A real venv without pip (fast): its python is this interpreter's, its sys.prefix the venv."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True, timeout=60)
    return where


def make_conda_env(where: Path) -> Path:
    """A conda environment's layout (conda-meta/, bin/python): a venv is one with its own python."""
    make_venv(where)
    (where / "conda-meta").mkdir()
    return where


class Cluster:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.home = copy_certs(make_certs(root / "ca", runners=("r1", "r2")), root / "home")
        self.code = root / "srv-code"
        self.code.mkdir()
        (self.code / "marker").write_text("the code directory of r1\n")
        self.venv = make_venv(root / "venv")
        self.default_env = make_venv(root / "default-env")
        self.envs = root / "conda-envs"
        self.named = make_conda_env(self.envs / "lab")
        self.procs: list[Proc] = []
        self.ctl = start_controller(self.home)
        self.procs.append(self.ctl)
        # r1 declares path `code` and finds conda envs by name in envs/; r2 has a default environment.
        self.runner("r1", "--label", "box=one", "--path", f"code={self.code}", env={"CONDA_ENVS_PATH": str(self.envs)})
        self.runner("r2", "--label", "box=two", "--task-env-path", str(self.default_env))

    def runner(self, name: str, *extra: str, env: dict[str, str] | None = None) -> None:
        lo, hi = free_port_range()
        args = ["--set", "runner.reconnect_max_s=0.5", "runner", "--controller", self.ctl.address, "--name", name]
        args += ["--host", "127.0.0.1", "--port-range", f"{lo}-{hi}", *extra]
        proc = start_dtask(args, self.home, env=env, listen=False)
        self.procs.append(proc)
        proc.wait_for(rf"connected to controller .* as {name}")

    def client(self) -> Controller:
        return Controller(self.ctl.address, certs=self.home / "certs", timeout=10)

    def run(self, spec: TaskSpec) -> tuple[Task, dict[str, str]]:
        """Run one task to its end: the task and its output's `key value` lines."""
        with self.client() as c:
            (tid,) = c.submit(spec)
            (task,) = c.wait([tid], timeout=60)
            out = b"".join(c.logs(tid)).decode()
        return task, dict(line.split(" ", 1) for line in out.splitlines() if " " in line)

    def stop(self) -> None:
        for p in reversed(self.procs):
            p.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("task-env"))
    try:
        yield c
    finally:
        c.stop()


def test_venv_gives_the_task_that_environments_python(cluster: Cluster) -> None:
    task, seen = cluster.run(
        TaskSpec(name="in-venv", argv=("python", "-c", SHOW), venv=str(cluster.venv), labels={"box": "one"})
    )
    assert task.state is TaskState.SUCCEEDED, task
    assert seen["prefix"] == str(cluster.venv)  # `python` is the venv's: its bin is first on PATH
    assert seen["venv"] == str(cluster.venv)
    assert seen["path0"] == str(cluster.venv / "bin")
    assert seen["conda"] == "-" and seen["pythonhome"] == "-"


def test_a_task_file_names_its_venv_in_defaults_relative_to_itself(cluster: Cluster) -> None:
    taskfile = cluster.root / "project" / "tasks.toml"
    taskfile.parent.mkdir()
    taskfile.write_text(
        '[defaults]\nvenv = "{taskfile_dir}/../venv"\nlabels = { box = "two" }\n\n'
        f'[[task]]\nname = "from-file"\ncommand = ["python", "-c", "{SHOW}"]\n'
    )
    with cluster.client() as c:
        (tid,) = c.submit(taskfile)
        (task,) = c.wait([tid], timeout=60)
        seen = dict(line.split(" ", 1) for line in b"".join(c.logs(tid)).decode().splitlines())
    assert task.state is TaskState.SUCCEEDED, task
    assert task.spec.venv == str(cluster.root / "project" / ".." / "venv")
    assert seen["prefix"] == str(cluster.venv)  # the task's venv wins over r2's default


def test_conda_by_directory_and_by_name(cluster: Cluster) -> None:
    task, seen = cluster.run(
        TaskSpec(name="conda-dir", argv=("python", "-c", SHOW), conda=str(cluster.named), labels={"box": "one"})
    )
    assert task.state is TaskState.SUCCEEDED, task
    assert seen["prefix"] == seen["conda"] == str(cluster.named) and seen["venv"] == "-"
    task, seen = cluster.run(
        TaskSpec(name="conda-name", argv=("python", "-c", SHOW), conda="lab", labels={"box": "one"})
    )
    assert task.state is TaskState.SUCCEEDED, task
    assert seen["conda"] == str(cluster.named)


def test_the_runners_task_env_path_is_the_default(cluster: Cluster) -> None:
    task, seen = cluster.run(TaskSpec(name="default-env", argv=("python", "-c", SHOW), labels={"box": "two"}))
    assert task.state is TaskState.SUCCEEDED, task
    assert seen["prefix"] == seen["venv"] == str(cluster.default_env)


def test_a_missing_environment_fails_the_attempt_and_the_runner_goes_on(cluster: Cluster) -> None:
    missing = cluster.root / "no-such-venv"
    task, _ = cluster.run(TaskSpec(name="no-venv", shell="true", venv=str(missing), labels={"box": "one"}))
    assert task.state is TaskState.FAILED
    assert f"venv '{missing}' does not exist on this runner" in task.attempts[-1].error
    task, _ = cluster.run(TaskSpec(name="no-conda", shell="true", conda="nope", labels={"box": "one"}))
    assert task.state is TaskState.FAILED
    assert "conda environment 'nope' was not found on this runner" in task.attempts[-1].error
    task, _ = cluster.run(TaskSpec(name="after", shell="true", labels={"box": "one"}))
    assert task.state is TaskState.SUCCEEDED


def test_a_runner_path_is_resolved_on_the_runner_that_declares_it(cluster: Cluster) -> None:
    command = "echo code {path:code}; echo work {runner:work_dir}; echo home {runner:home}; cat {path:code}/marker"
    with cluster.client() as c:
        ids = c.submit([TaskSpec(name=f"code-{i}", shell=command, cwd="{path:code}") for i in range(4)])
        tasks = c.wait(ids, timeout=60)
        outputs = [b"".join(c.logs(t.id)).decode() for t in tasks]
    assert [t.state for t in tasks] == [TaskState.SUCCEEDED] * 4, tasks
    assert {t.attempts[-1].executor for t in tasks} == {"r1"}  # never r2, which has no `code`
    for out in outputs:
        assert f"code {cluster.code}\n" in out and "the code directory of r1" in out
        assert f"work {cluster.home / 'runner' / 'r1' / 'work'}\n" in out
        assert f"home {os.path.expanduser('~')}\n" in out


def test_a_task_naming_a_path_no_runner_declares_stays_pending_and_says_why(cluster: Cluster) -> None:
    with cluster.client() as c:
        tid = c.add_task("ls {path:data}")
        task = c.task(tid)
        assert task.state is TaskState.PENDING
        assert (
            task.error
            == "waiting: no runner declares path data (a runner declares one with dtask runner --path NAME=DIR)"
        )
        done = subprocess.run(
            [str(Path(sys.executable).parent / "dtask"), "--controller", cluster.ctl.address, "task", tid],
            env=dict(os.environ, DTASK_HOME=str(cluster.home)),
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert "waiting     no runner declares path data" in done.stdout, done.stdout + done.stderr
        c.cancel(tid)


def test_dtask_submit_venv_makes_a_relative_venv_absolute_where_it_is_typed(cluster: Cluster) -> None:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "dtask"), "--controller", cluster.ctl.address, "submit", "--venv", "venv"]
        + ["--label", "box=one", "--", "python", "-c", SHOW],
        cwd=cluster.root,
        env=dict(os.environ, DTASK_HOME=str(cluster.home)),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    with cluster.client() as c:
        (task,) = c.wait([done.stdout.strip()], timeout=60)
        seen = dict(line.split(" ", 1) for line in b"".join(c.logs(task.id)).decode().splitlines())
    assert task.spec.venv == str(cluster.venv) and task.state is TaskState.SUCCEEDED, task
    assert seen["prefix"] == str(cluster.venv)
