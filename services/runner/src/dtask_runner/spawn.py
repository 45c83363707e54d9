"""What an attempt is started as (its argv, working directory and environment), its spawn, and why it could not start."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from dtask_common import runner_paths

from dtask_runner import pyenv
from dtask_runner.attempt_request import AttemptRequest, metrics_file_for
from dtask_runner.gate import SH
from dtask_runner.taskenv import AttemptEnv, task_env
from dtask_runner.taskuser import TaskUser


class SpawnError(Exception):
    """The attempt could not start (missing executable, bad cwd, ...); the message says why."""


def build_command(
    req: AttemptRequest,
    result_file: Path,
    *,
    work_dir: Path,
    base_env: Mapping[str, str],
    token: str,
    hide_gpus: bool,
    user: TaskUser | None,
    placeholders: Mapping[str, str] | None = None,
    task_env_path: str = "",
) -> tuple[list[str], str, dict[str, str]]:
    """The attempt's argv (its program resolved to a path), cwd and environment; SpawnError when it cannot run.

    Runner-side placeholders ({runner:work_dir}, {path:NAME}) are replaced with placeholders' values first;
    the task's Python environment (venv, conda, else task_env_path) must exist here."""
    try:
        spec = runner_paths.resolve_spec(req.spec, placeholders or {})
    except runner_paths.UnresolvedPlaceholder as exc:
        raise SpawnError(str(exc)) from None
    cwd = os.path.expanduser(spec.cwd) if spec.cwd else str(work_dir)
    if not os.path.isabs(cwd):
        cwd = str(work_dir / cwd)
    # The working directory is not looked at here: a spawn that cannot enter it fails, and
    # spawn_failure() then says why (one stat less for every attempt that starts).
    try:
        python_env = pyenv.find(spec.venv, spec.conda, task_env_path, cwd, base_env)
    except pyenv.PyEnvError as exc:
        raise SpawnError(str(exc)) from None
    env = task_env(
        base_env,
        spec.env,
        AttemptEnv(req.task_id, req.attempt, str(result_file), token, req.gpu_ids, str(metrics_file_for(result_file))),
        hide_gpus=hide_gpus,
        user=user,
        python_env=python_env,
    )
    if not spec.argv:  # /bin/sh is exec'd by the spawn itself, which says so if it is missing
        return [SH, "-c", spec.shell], cwd, env
    argv = list(spec.argv)
    program = argv[0]
    if "/" in program:
        path = program if os.path.isabs(program) else os.path.join(cwd, program)
        if not os.path.isfile(path):
            raise SpawnError(f"executable {program!r} does not exist on this runner")
        if not os.access(path, os.X_OK):
            raise SpawnError(f"{program!r} is not executable (chmod +x it, or run it through an interpreter)")
        argv[0] = path
    else:
        found = shutil.which(program, path=env.get("PATH", os.defpath))
        if not found:
            where = "the task's env" if "PATH" in spec.env else env.get("PATH", os.defpath)
            if python_env is not None and "PATH" not in spec.env:
                where = f"{python_env.bin} first, then the runner's PATH"  # env values are secret
            raise SpawnError(f"executable {program!r} was not found on PATH ({where})")
        argv[0] = found
    return argv, cwd, env


def popen(
    argv: list[str], cwd: str, env: dict[str, str], stdin: int, out: int, user: TaskUser | None
) -> subprocess.Popen[bytes]:
    """An attempt's first process, in its own session, stdout and stderr into out; a working directory it
    cannot enter is a SpawnError saying so."""
    try:
        return subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=stdin,
            stdout=out,
            stderr=out,
            start_new_session=True,
            close_fds=True,
            **(user.spawn_args() if user else {}),
        )
    except OSError as exc:
        raise spawn_failure(exc, cwd) from None


def spawn_failure(exc: OSError, cwd: str) -> Exception:
    """What a failed spawn means: a working directory that is not there, or the error itself."""
    if not os.path.isdir(cwd):
        return SpawnError(f"working directory {cwd!r} does not exist on this runner")
    return exc


def spawn_message(exc: BaseException) -> str:
    """What to tell the task's log when it could not start."""
    if isinstance(exc, SpawnError):
        return str(exc)
    if isinstance(exc, FileNotFoundError):
        return f"could not start: {exc.strerror}: {exc.filename!r}"
    if isinstance(exc, PermissionError):
        return f"could not start: permission denied: {exc.filename!r}"
    return f"could not start: {exc}"
