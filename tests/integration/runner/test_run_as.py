"""runner.run_as: a root runner runs its tasks as another user, who cannot read the runner's keys or home,
while output, progress, result and GPU variables still arrive; a runner not started as root refuses it."""

from __future__ import annotations

import os
import secrets
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from dtask_common import certs
from dtask_common.roles import Role

from tests.integration.runner.fake_controller import FakeController
from tests.support import BIN, Proc, free_port_range, start_dtask

ROOT = os.geteuid() == 0


@pytest.fixture
def task_user() -> Iterator[str]:
    """A system user made for this test (removed afterwards)."""
    if not ROOT:
        pytest.skip("running tasks as another user needs root (the runner switches to it)")
    if not shutil.which("useradd") or not shutil.which("userdel"):
        pytest.skip("useradd/userdel are not installed: cannot create a user to run tasks as")
    name = f"dtask-t{secrets.token_hex(4)}"
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True, timeout=30
    )
    try:
        yield name
    finally:
        subprocess.run(["userdel", name], check=False, timeout=30)


@pytest.fixture
def place() -> Iterator[Path]:
    """A directory others may search (pytest's own tmp dir is root's alone), as a machine's /srv would be."""
    d = Path(tempfile.mkdtemp(prefix="dtask-run-as-"))
    d.chmod(0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def start_runner(home: Path, controller: str, *extra: str, env: dict[str, str] | None = None) -> Proc:
    lo, hi = free_port_range()
    return start_dtask(
        [
            "runner",
            "--controller",
            controller,
            "--name",
            "r1",
            "--host",
            "127.0.0.1",
            "--port-range",
            f"{lo}-{hi}",
            *extra,
        ],
        home,
        env=env,
    )


def test_tasks_run_as_the_user_without_access_to_the_runners_keys(task_user: str, place: Path) -> None:
    home = place / "home"  # made by dtask: 0700, as is everything in it
    certs.init(home / "certs")
    certs.issue(home / "certs", Role.RUNNER, "r1")
    key = home / "certs" / "runner-r1.key"
    secret = place / "secret.json"  # a root-only JSON file a task might try to pass off as its result
    secret.write_text('{"secret": 1}')
    secret.chmod(0o600)
    work = place / "work"
    fake = FakeController(home / "certs").start()
    runner = start_runner(home, fake.address, "--run-as", task_user, "--work-dir", str(work), "--gpus", "0,1")
    try:
        runner.wait_for(f"tasks run as {task_user} ")
        s = fake.session()
        shell = (
            f'id -un; echo "cvd=$CUDA_VISIBLE_DEVICES home=$HOME"; cat {key} && echo KEY-READ; '
            f'ls {home} && echo HOME-LISTED; echo "step: 1 / 2"; echo "step: 2 / 2"; touch made-here; '
            'echo \'{"ok": 1}\' > "$DTASK_RESULT_FILE"'
        )
        s.assign("u", 1, gpu_ids=(1,), shell=shell, progress="fraction")
        data, fin = s.output_of("u", 1)
        text = data.decode()
        assert text.splitlines()[0] == task_user
        assert "cvd=1 home=/" in text
        assert "KEY-READ" not in text and "HOME-LISTED" not in text and "Permission denied" in text
        assert "BEGIN PRIVATE KEY" not in text
        assert fin.state == 3 and dict(fin.result) == {"ok": 1}
        progress = [m.progress for m in s.seen if m.WhichOneof("msg") == "progress" and m.progress.task_id == "u"]
        assert progress and progress[-1].progress.step == 2 and progress[-1].progress.total == 2
        uid = int(subprocess.run(["id", "-u", task_user], capture_output=True, text=True, check=True).stdout)
        assert work.stat().st_uid == uid and stat.S_IMODE(work.stat().st_mode) == 0o700
        assert (work / "made-here").stat().st_uid == uid
        log = home / "runner" / "r1" / "logs" / "u.1.log"  # written by the runner, not by the task
        assert log.read_bytes() == data and log.stat().st_uid == 0 and stat.S_IMODE(log.stat().st_mode) == 0o600

        # A result file swapped for a link to a root-only file is not read as the task's result.
        s.assign("v", 1, shell=f'ln -sf {secret} "$DTASK_RESULT_FILE"; echo linked')
        data, fin = s.output_of("v", 1)
        assert data == b"linked\n" and fin.state == 3 and "secret" not in dict(fin.result)
    finally:
        runner.stop()
        fake.stop()


def test_a_loose_home_or_a_work_dir_inside_it_or_of_someone_else_is_refused(
    task_user: str, place: Path, home: Path
) -> None:
    home.chmod(0o755)
    loose = start_dtask(
        ["runner", "--controller", "127.0.0.1:1", "--run-as", task_user, "--work-dir", str(place / "w")],
        home,
        listen=False,
    )
    assert loose.popen.wait(30) != 0
    assert (
        f"{home} (dtask's home, with its keys) is mode 0755: its group and others may enter it; make it private "
        f"with chmod 700 {home}: tasks run as {task_user} must not reach it"
    ) in "".join(loose.lines)
    home.chmod(0o700)
    inside = start_dtask(["runner", "--controller", "127.0.0.1:1", "--run-as", task_user], home, listen=False)
    assert inside.popen.wait(30) != 0
    assert f"is inside DTASK_HOME ({home}), which only root may enter" in "".join(inside.lines)
    theirs = place / "roots"
    theirs.mkdir()
    other = start_dtask(
        ["runner", "--controller", "127.0.0.1:1", "--run-as", task_user, "--work-dir", str(theirs)], home, listen=False
    )
    assert other.popen.wait(30) != 0
    assert f"the work dir {theirs} belongs to uid 0, not to {task_user}: chown" in "".join(other.lines)
    hidden = place / "private"
    hidden.mkdir(mode=0o700)
    unreachable = start_dtask(
        ["runner", "--controller", "127.0.0.1:1", "--run-as", task_user, "--work-dir", str(hidden / "work")],
        home,
        listen=False,
    )
    assert unreachable.popen.wait(30) != 0
    assert f"{task_user} cannot enter the work dir {hidden / 'work'}: let them search" in "".join(unreachable.lines)


# As root, the interpreter loads what the command needs, then becomes nobody (the venv's interpreter may
# live where nobody can read it): the refusal comes before any other file is touched.
AS_NOBODY = """
import os, sys
import dtask_cli, dtask_runner.command, dtask_client, dtask_client.errors
if os.geteuid() == 0:
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)
sys.argv = ["dtask", "runner", "--controller", "127.0.0.1:1", "--run-as", "nobody"]
dtask_cli.main()
"""


def test_a_runner_not_started_as_root_refuses_run_as(tmp_path: Path) -> None:
    env = dict(os.environ, DTASK_HOME=str(tmp_path / "home"))
    env.pop("DTASK_CONFIG", None)
    done = subprocess.run(
        [str(BIN / "python"), "-c", AS_NOBODY], env=env, cwd="/", capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "--run-as nobody (runner.run_as) needs a runner started as root" in lines[0]
    assert "this one runs as uid 65534" in lines[0] or not ROOT
    assert not (tmp_path / "home").exists()
