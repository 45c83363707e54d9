"""Where each configuration value came from, the address a client dials, and --set after the subcommand."""

from __future__ import annotations

from pathlib import Path

import pytest
from dtask_client.options import hoist_settings
from dtask_common.config.loading import load_sourced


def test_sources_and_the_dialled_port(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "dtask.toml"
    f.write_text("[controller]\nport_range = [50300, 50309]\n")
    cfg, sources = load_sourced(f, {"client.timeout_s": "4"}, {"client.timeout_s": "--set client.timeout_s"})
    assert cfg.client.controller == cfg.runner.controller == "localhost:50300"
    assert sources["controller.port_range"] == str(f) and sources["client.timeout_s"] == "--set client.timeout_s"
    assert "controller.dead_after_s" not in sources
    monkeypatch.setenv("DTASK_CONTROLLER", "elsewhere:7000")
    cfg, sources = load_sourced(f)
    assert cfg.client.controller == "elsewhere:7000" and sources["client.controller"].startswith("environment")
    assert cfg.runner.controller == "localhost:50300"


def test_a_controller_bound_to_one_address_is_dialled_there(tmp_path: Path) -> None:
    f = tmp_path / "dtask.toml"
    f.write_text('[controller]\nhost = "::1"\n')
    assert load_sourced(f)[0].client.controller == "[::1]:50051"


def test_hoist_settings_stops_at_dashdash() -> None:
    argv = ["submit", "--set", "a.b=1", "--name", "x", "--set=c.d=2", "--", "prog", "--set", "e=f"]
    assert hoist_settings(argv) == [
        "--set",
        "a.b=1",
        "--set=c.d=2",
        "submit",
        "--name",
        "x",
        "--",
        "prog",
        "--set",
        "e=f",
    ]
