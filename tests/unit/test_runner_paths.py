"""Runner-side placeholders ({runner:work_dir}, {runner:home}, {path:NAME}): found, checked and resolved (pure)."""

from __future__ import annotations

import pytest
from dtask_common import runner_paths as rp
from dtask_common import taskfile
from dtask_common.config import ConfigError
from dtask_common.config import load as load_config
from dtask_common.models import TaskSpec

VALUES = rp.runner_values("/w", "/home/u", {"code": "/srv/lab/code"})


def test_the_names_a_spec_needs_are_its_path_placeholders_only() -> None:
    spec = TaskSpec(
        shell="cd {path:code} && run {runner:work_dir} {runner:home}",
        cwd="{path:data}/x",
        env={"A": "{path:models}"},
        venv="{path:envs}/v",
    )
    assert rp.path_names(spec) == {"code", "data", "models", "envs"}
    assert rp.path_names(TaskSpec(shell="echo ${HOME} {x} {runner:home}")) == frozenset()


def test_resolve_replaces_every_field_and_leaves_other_braces() -> None:
    spec = TaskSpec(
        argv=("python", "{path:code}/train.py", "--out={runner:work_dir}/out", "${X}", "{lr}"),
        cwd="{runner:home}",
        env={"DATA": "{path:code}/data"},
        venv="{path:code}/.venv",
    )
    got = rp.resolve_spec(spec, VALUES)
    assert got.argv == ("python", "/srv/lab/code/train.py", "--out=/w/out", "${X}", "{lr}")
    assert (got.cwd, got.env["DATA"], got.venv) == ("/home/u", "/srv/lab/code/data", "/srv/lab/code/.venv")
    plain = TaskSpec(shell="true")
    assert rp.resolve_spec(plain, VALUES) is plain


def test_a_path_this_runner_does_not_declare_is_an_error_naming_the_fix() -> None:
    with pytest.raises(
        rp.UnresolvedPlaceholder, match=r"\{path:data\} is not declared on this runner .*--path data=DIR"
    ):
        rp.resolve("ls {path:data}", VALUES)


def test_unknown_runner_placeholders_and_bad_names_are_refused_at_submit() -> None:
    errors = {e.field: e.message for e in TaskSpec(shell="echo {runner:host}", cwd="{path:a b}").errors()}
    assert "unknown placeholder {runner:host}" in errors["command"]
    assert "cwd" not in errors or "path name" in errors["cwd"]
    assert [e.field for e in TaskSpec(shell="true", venv="/a", conda="b").errors()] == ["venv"]


def test_the_task_file_keeps_runner_placeholders_and_fills_its_own() -> None:
    (spec,) = taskfile.parse(
        '[defaults]\nvenv = "{taskfile_dir}/.venv"\n[[task]]\ncommand = "python {path:code}/t.py"\ncwd = "{runner:work_dir}"\n',
        base_dir="/lab",
    )
    assert (spec.venv, spec.shell, spec.cwd) == ("/lab/.venv", "python {path:code}/t.py", "{runner:work_dir}")
    (spec,) = taskfile.parse('[[task]]\ncommand = "true"\nconda = "torch"\n')
    assert spec.conda == "torch"


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("code", "use NAME=DIR"),
        ("code=", "use NAME=DIR"),
        ("1x=/a", "must be letters"),
        ("code=relative/dir", "must be an absolute directory"),
    ],
)
def test_path_declarations_are_checked(item: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        rp.parse_path(item)
    assert rp.parse_path("code=/srv/lab/code") == ("code", "/srv/lab/code")


def test_runner_paths_in_the_config_are_checked() -> None:
    assert load_config(None, {"runner.paths": {"code": "/srv/code"}}).runner.paths == {"code": "/srv/code"}
    with pytest.raises(ConfigError, match="runner.paths: 'code=here': 'here' must be an absolute directory"):
        load_config(None, {"runner.paths": {"code": "here"}})
