"""A task's environment: the runner's, without dtask's own variables, then the task's, its venv's, the attempt's."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from dtask_common.metrics import METRICS_FILE_ENV

from dtask_runner.pyenv import PyEnv, apply
from dtask_runner.taskuser import TaskUser
from dtask_runner.watchdog import TOKEN_ENV

# The runner's own settings (DTASK_HOME, DTASK_CONFIG, DTASK_CONTROLLER, ...) point at its keys and
# files: none of them reaches a task. The attempt's DTASK_* variables are set afresh below.
OWN_PREFIX = "DTASK_"


@dataclass(frozen=True, slots=True)
class AttemptEnv:
    """What the environment tells a task about its attempt."""

    task_id: str
    attempt: int
    result_file: str
    token: str
    gpu_ids: tuple[int, ...] = ()
    metrics_file: str = ""


def task_env(
    base: Mapping[str, str],
    spec_env: Mapping[str, str],
    attempt: AttemptEnv,
    *,
    hide_gpus: bool = False,
    user: TaskUser | None = None,
    python_env: PyEnv | None = None,
) -> dict[str, str]:
    """The environment of one attempt; the task's own `env` wins over the runner's, its Python environment's
    bin goes first on PATH, and the attempt's variables win over all."""
    env = {k: v for k, v in base.items() if not k.startswith(OWN_PREFIX)}
    if user is not None:
        env.update(user.env())
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.update(spec_env)
    if python_env is not None:
        apply(env, python_env)
    env["DTASK_TASK_ID"] = attempt.task_id
    env["DTASK_ATTEMPT"] = str(attempt.attempt)
    env["DTASK_RESULT_FILE"] = attempt.result_file
    if attempt.metrics_file:
        env[METRICS_FILE_ENV] = attempt.metrics_file
    env[TOKEN_ENV] = attempt.token
    if attempt.gpu_ids:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in attempt.gpu_ids)
    elif hide_gpus and "CUDA_VISIBLE_DEVICES" not in spec_env:
        env["CUDA_VISIBLE_DEVICES"] = ""
    return env
