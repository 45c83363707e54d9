"""A task's Python environment on the runner: found (venv, conda directory or name, the runner's default) and
applied to its environment (bin first on PATH, VIRTUAL_ENV or CONDA_PREFIX, no PYTHONHOME)."""

from __future__ import annotations

from pathlib import Path

import pytest
from dtask_runner import pyenv
from dtask_runner.taskenv import AttemptEnv, task_env


def env_dir(where: Path, *, conda: bool = False) -> Path:
    (where / "bin").mkdir(parents=True)
    if conda:
        (where / "conda-meta").mkdir()
    return where


def test_venv_relative_to_the_cwd_and_applied(tmp_path: Path) -> None:
    env_dir(tmp_path / "proj" / ".venv")
    found = pyenv.find(".venv", "", "", str(tmp_path / "proj"), {})
    assert found == pyenv.PyEnv("venv", str(tmp_path / "proj" / ".venv"))
    base = {"PATH": "/usr/bin", "PYTHONHOME": "/opt/py", "CONDA_PREFIX": "/c", "DTASK_HOME": "/secret"}
    env = task_env(base, {"PATH": "/mine"}, AttemptEnv("1", 1, "/r", "t"), python_env=found)
    assert env["PATH"] == f"{tmp_path / 'proj' / '.venv' / 'bin'}:/mine"  # first, even before the task's PATH
    assert env["VIRTUAL_ENV"] == found.prefix
    assert "PYTHONHOME" not in env and "CONDA_PREFIX" not in env and "DTASK_HOME" not in env


def test_conda_by_name_in_the_envs_dirs_and_the_default_kind(tmp_path: Path) -> None:
    env_dir(tmp_path / "envs" / "torch", conda=True)
    found = pyenv.find("", "torch", "", "/", {"CONDA_ENVS_PATH": str(tmp_path / "envs"), "HOME": str(tmp_path)})
    assert found == pyenv.PyEnv("conda", str(tmp_path / "envs" / "torch"), "torch")
    env: dict[str, str] = {"PATH": "/usr/bin", "VIRTUAL_ENV": "/v"}
    pyenv.apply(env, found)
    assert env["CONDA_PREFIX"] == found.prefix and env["CONDA_DEFAULT_ENV"] == "torch" and "VIRTUAL_ENV" not in env
    default = pyenv.find("", "", str(tmp_path / "envs" / "torch"), "/", {})
    assert default is not None and default.kind == "conda"
    assert pyenv.find("", "", "", "/", {}) is None


def test_missing_environments_say_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(pyenv.PyEnvError, match="venv '.*/nope' does not exist on this runner"):
        pyenv.find(str(tmp_path / "nope"), "", "", "/", {})
    (tmp_path / "empty").mkdir()
    with pytest.raises(pyenv.PyEnvError, match="has no bin directory"):
        pyenv.find("", str(tmp_path / "empty"), "", "/", {})
    with pytest.raises(pyenv.PyEnvError, match="conda environment 'lab' was not found"):
        pyenv.find("", "lab", "", "/", {"HOME": str(tmp_path)})
