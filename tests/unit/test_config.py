"""dtask.toml loading: defaults, overrides, and clear errors for bad files."""

from __future__ import annotations

from pathlib import Path

import pytest
from dtask_common import config
from dtask_common.config import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "dtask.toml"
    p.write_text(text)
    return p


def test_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("DTASK_CONFIG", raising=False)
    monkeypatch.delenv("DTASK_CONTROLLER", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DTASK_HOME", raising=False)
    cfg = config.load()
    assert cfg.controller.port_range == (50051, 50059)
    assert cfg.runner.port_range == (50100, 50199)
    assert cfg.home_path == tmp_path / ".dtask"
    assert cfg.certs_path == tmp_path / ".dtask" / "certs"
    assert cfg.store_path == tmp_path / ".dtask" / "controller.db"
    assert cfg.controller.dead_after_s == 3 and cfg.controller.lost_after_s == 60
    assert cfg.runner.name.startswith("exec@") and cfg.controller.name.startswith("ctrl@")


def test_file_then_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DTASK_CONTROLLER", raising=False)
    p = write(tmp_path, '[controller]\nport_range = [6000, 6005]\ndead_after_s = 5\n[runner]\nlabels = {zone = "a"}\n')
    cfg = config.load(p, {"controller.dead_after_s": "7", "runner.slots": "4", "home": str(tmp_path)})
    assert cfg.controller.port_range == (6000, 6005)
    assert cfg.controller.dead_after_s == 7.0
    assert cfg.runner.slots == 4 and cfg.runner.labels == {"zone": "a"}
    assert cfg.certs_path == tmp_path / "certs"


def test_env_config_and_controller(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = write(tmp_path, '[client]\ncontroller = "a:1"\n')
    monkeypatch.setenv("DTASK_CONFIG", str(p))
    monkeypatch.delenv("DTASK_CONTROLLER", raising=False)
    assert config.load().client.controller == "a:1"
    monkeypatch.setenv("DTASK_CONTROLLER", "b:2")
    assert config.load().client.controller == "b:2"


def test_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load(write(tmp_path, "[controller\n"))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        config.load(tmp_path / "nope.toml")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("colour = 1\n", "unknown key 'colour'"),
        ("[controller]\nport = 1\n", "unknown key 'controller.port'"),
        ("[scheduler]\nx = 1\n", "unknown key 'scheduler'"),
        ("[controller]\nport_range = [50059, 50051]\n", "controller.port_range must be a range"),
        ("[controller]\nport_range = [0, 10]\n", "controller.port_range must be a range"),
        ("[controller]\nport_range = [1, 2, 3]\n", "controller.port_range must be two ports"),
        ('[controller]\nport_range = "abc"\n', "controller.port_range must be two ports"),
        ('[runner]\nslots = "many"\n', "runner.slots must be an integer"),
        ("[runner]\nslots = 0\n", "runner.slots must be >= 1"),
        ("[controller]\ndead_after_s = -1\n", "dead_after_s must be > 0"),
        ("controller = 3\n", r"\[controller\] must be a table"),
    ],
)
def test_bad_values(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        config.load(write(tmp_path, text))


def test_port_range_flag_forms() -> None:
    assert config.load(None, {"controller.port_range": "7000-7002"}).controller.port_range == (7000, 7002)
    with pytest.raises(ConfigError, match="port_range"):
        config.load(None, {"controller.port_range": "x-y"})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"runner.slot": "2"}, "command line: unknown key 'runner.slot' (did you mean 'runner.slots'?); known keys: "),
        ({"runer.slots": "2"}, "command line: unknown section 'runer' in 'runer.slots' (did you mean 'runner'?)"),
        ({"client": "x"}, "command line: 'client' is a section; set one of its keys, e.g. client.controller"),
        ({"client.timeout_s": "abc"}, "command line: client.timeout_s must be a number, got 'abc'"),
    ],
)
def test_override_mistakes_name_the_fix(
    overrides: dict[str, str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DTASK_CONFIG", raising=False)
    with pytest.raises(ConfigError) as info:
        config.load(None, overrides)
    assert str(info.value).startswith(message), str(info.value)


def test_file_key_typo_suggests(tmp_path: Path) -> None:
    p = write(tmp_path, "[clients]\ncontroller = 'x:1'\n")
    with pytest.raises(ConfigError, match=r"unknown key 'clients' \(did you mean 'client'\?\)"):
        config.load(p)


def test_unknown_client_key_lists_every_client_key(tmp_path: Path) -> None:
    p = write(tmp_path, "[client]\ntimout_s = 5\n")
    with pytest.raises(ConfigError) as info:
        config.load(p)
    assert str(info.value).endswith(
        "(did you mean 'client.timeout_s'?); known keys: client.controller, client.direct_logs, client.timeout_s"
    )


@pytest.mark.parametrize("gpus", ["foo", "0,x", "-1"])
def test_runner_gpus_setting_is_checked(gpus: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DTASK_CONFIG", raising=False)
    with pytest.raises(ConfigError, match="runner.gpus must be auto, none or GPU indexes like 0,1"):
        config.load(None, {"runner.gpus": gpus})
    for ok in ("auto", "none", "0,1", " 2 "):
        assert config.load(None, {"runner.gpus": ok}).runner.gpus == ok


def test_readme_configuration_block_is_valid_and_the_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The README's dtask.toml loads as is and holds the defaults."""
    import re

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = re.search(r"```toml\n(.*?)```", readme.split("## Configuration", 1)[1], re.S)
    assert block is not None
    monkeypatch.delenv("DTASK_CONFIG", raising=False)
    monkeypatch.delenv("DTASK_CONTROLLER", raising=False)
    assert config.load(write(tmp_path, block.group(1))) == config.load(None)


def test_every_config_field_has_a_docstring() -> None:
    """Each field of the config dataclasses has an attribute docstring right under it (its unit and default)."""
    import ast
    import dataclasses
    import inspect

    classes = (config.ControllerConfig, config.RunnerConfig, config.ClientConfig, config.Config)
    for cls in classes:
        tree = ast.parse(inspect.getsource(cls))
        body = next(n for n in tree.body if isinstance(n, ast.ClassDef)).body
        documented = {
            node.target.id
            for node, after in zip(body, body[1:], strict=False)
            if isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
            and after.value.value.strip()
        }
        missing = [f.name for f in dataclasses.fields(cls) if f.name not in documented]
        assert missing == [], f"{cls.__name__}: fields without a docstring: {missing}"
