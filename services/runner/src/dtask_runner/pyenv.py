"""The Python environment a task runs in (a venv or a conda env): found on this machine, then put first on PATH."""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Literal


class PyEnvError(Exception):
    """The task's environment is not on this runner; the message says which and how to make it."""


@dataclass(frozen=True, slots=True)
class PyEnv:
    """A Python environment: its kind, its directory (prefix) and, for conda, its name."""

    kind: Literal["venv", "conda"]
    prefix: str
    name: str = ""

    @property
    def bin(self) -> str:
        return os.path.join(self.prefix, "bin")


def conda_env_dirs(base_env: Mapping[str, str]) -> list[str]:
    """Where conda keeps named environments on this machine, in conda's own order of search."""
    dirs: list[str] = []
    for var in ("CONDA_ENVS_PATH", "CONDA_ENVS_DIRS"):
        dirs += [d for d in base_env.get(var, "").split(os.pathsep) if d]
    for var in ("CONDA_EXE", "MAMBA_EXE"):  # <root>/bin/conda: the root's envs/
        if exe := base_env.get(var, ""):
            dirs.append(os.path.join(os.path.dirname(os.path.dirname(exe)), "envs"))
    if root := base_env.get("MAMBA_ROOT_PREFIX", ""):
        dirs.append(os.path.join(root, "envs"))
    home = base_env.get("HOME") or os.path.expanduser("~")
    dirs += [os.path.join(home, d, "envs") for d in (".conda", "miniforge3", "miniconda3", "mambaforge", "anaconda3")]
    dirs += ["/opt/conda/envs"]
    return list(dict.fromkeys(os.path.expanduser(d) for d in dirs))


def find(venv: str, conda: str, default: str, cwd: str, base_env: Mapping[str, str]) -> PyEnv | None:
    """The environment a task names (venv or conda), else the runner's default (task_env_path), else None;
    PyEnvError when it is not here."""
    if venv:
        return _checked(PyEnv("venv", _absolute(venv, cwd)), "venv")
    if conda:
        if "/" not in conda and not conda.startswith("~"):
            return _named_conda(conda, base_env)
        return _checked(PyEnv("conda", _absolute(conda, cwd), os.path.basename(conda.rstrip("/"))), "conda")
    if default:
        prefix = _absolute(default, cwd)
        kind: Literal["venv", "conda"] = "conda" if os.path.isdir(os.path.join(prefix, "conda-meta")) else "venv"
        return _checked(PyEnv(kind, prefix, os.path.basename(prefix) if kind == "conda" else ""), "task_env_path")
    return None


def apply(env: MutableMapping[str, str], pyenv: PyEnv) -> None:
    """Put the environment's bin first on PATH and say which it is, as activating it would."""
    env["PATH"] = pyenv.bin + os.pathsep + env.get("PATH", os.defpath)
    env.pop("PYTHONHOME", None)
    if pyenv.kind == "venv":
        env["VIRTUAL_ENV"] = pyenv.prefix
        for key in ("CONDA_PREFIX", "CONDA_DEFAULT_ENV"):
            env.pop(key, None)
    else:
        env["CONDA_PREFIX"] = pyenv.prefix
        env["CONDA_DEFAULT_ENV"] = pyenv.name or pyenv.prefix
        env.pop("VIRTUAL_ENV", None)


def _absolute(path: str, cwd: str) -> str:
    path = os.path.expanduser(path)
    return os.path.normpath(path if os.path.isabs(path) else os.path.join(cwd, path))


def _checked(pyenv: PyEnv, what: str) -> PyEnv:
    if not os.path.isdir(pyenv.prefix):
        make = f"python -m venv {pyenv.prefix}" if pyenv.kind == "venv" else f"conda create -p {pyenv.prefix}"
        raise PyEnvError(f"{what} {pyenv.prefix!r} does not exist on this runner (make it there: {make})")
    if not os.path.isdir(pyenv.bin):
        raise PyEnvError(f"{what} {pyenv.prefix!r} has no bin directory on this runner: is it a {pyenv.kind}?")
    return pyenv


def _named_conda(name: str, base_env: Mapping[str, str]) -> PyEnv:
    dirs = conda_env_dirs(base_env)
    for d in dirs:
        prefix = os.path.join(d, name)
        if os.path.isdir(os.path.join(prefix, "bin")):
            return PyEnv("conda", prefix, name)
    searched = ", ".join(d for d in dirs if os.path.isdir(d)) or "no conda envs directory exists"
    raise PyEnvError(
        f"conda environment {name!r} was not found on this runner (searched: {searched}); "
        'give its directory (conda = "/path/to/env") or create it there'
    )
