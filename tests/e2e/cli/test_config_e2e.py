"""Configuration that does what it says: a controller, a runner, the CLI and the TUI's client started from one
dtask.toml that moves every port off its default, with --set after the subcommand."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from dtask_client.options import OptionsContext
from dtask_tui.main import client_for

from tests.support import BIN, Proc, copy_certs, free_port_range, start_dtask


@dataclass
class Site:
    home: Path
    config: Path
    controller: Proc
    runner: Proc
    ports: tuple[int, int]
    runner_ports: tuple[int, int]

    def dtask(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """`dtask ARGS` with this site's config in $DTASK_CONFIG and no controller address anywhere else."""
        e = dict(os.environ, DTASK_HOME=str(self.home), DTASK_CONFIG=str(self.config), **(env or {}))
        if not env or "DTASK_CONTROLLER" not in env:
            e.pop("DTASK_CONTROLLER", None)
        return subprocess.run([str(BIN / "dtask"), *args], env=e, capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, certs_template: Path) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("config-site")
    home = copy_certs(certs_template, root / "home")
    ports, runner_ports = free_port_range(), free_port_range()
    config = root / "dtask.toml"
    config.write_text(
        f'[controller]\nhost = "127.0.0.1"\nport_range = [{ports[0]}, {ports[1]}]\n\n'
        f'[runner]\nhost = "127.0.0.1"\nport_range = [{runner_ports[0]}, {runner_ports[1]}]\n'
    )
    env = {"DTASK_CONFIG": str(config)}
    # --set after the subcommand: before the change click said "No such option: --set"
    controller = start_dtask(["controller", "--set", "controller.dead_after_s=4"], home, env=env)
    runner = start_dtask(
        ["runner", "--name", "r1", "--set", "runner.reconnect_max_s=0.5", "--set=runner.kill_grace_s=2"], home, env=env
    )
    try:
        runner.wait_for(r"connected to controller .* as r1")
        yield Site(home, config, controller, runner, ports, runner_ports)
    finally:
        runner.stop()
        controller.stop()


def test_controller_and_runner_listen_where_the_file_says_and_log_their_settings(site: Site) -> None:
    assert site.controller.address == f"127.0.0.1:{site.ports[0]}"
    line = site.controller.wait_for(r"controller settings: .*").group(0)
    assert f"ports {site.ports[0]}-{site.ports[1]} on 127.0.0.1" in line
    assert "dead after 4s" in line and "lost after 60s" in line  # the --set after `controller` took effect
    line = site.runner.wait_for(r"runner settings: .*").group(0)
    assert f"controller 127.0.0.1:{site.ports[0]}" in line  # the runner dialled the first port of the range
    assert f"ports {site.runner_ports[0]}-{site.runner_ports[1]}" in line and "kill grace 2s" in line


def test_cli_dials_the_first_port_of_the_range(site: Site) -> None:
    done = site.dtask("executors", "--json")
    assert done.returncode == 0, done.stderr
    assert [e["name"] for e in json.loads(done.stdout)] == ["r1"]
    done = site.dtask("tasks", "--set", "client.timeout_s=5")  # --set after `tasks`
    assert done.returncode == 0, done.stderr


def test_tui_client_dials_the_first_port_of_the_range(site: Site) -> None:
    ctx = OptionsContext.from_options({"config_path": str(site.config), "certs": str(site.home / "certs")})
    client = client_for(ctx)
    assert client.address == f"127.0.0.1:{site.ports[0]}"

    async def names() -> list[str]:
        try:
            return [e.name for e in await client.executors()]
        finally:
            await client.close()

    assert asyncio.run(names()) == ["r1"]


def test_hints_quote_the_configured_ranges(site: Site) -> None:
    runner_port = re.search(r"listening on \S+:(\d+)", "".join(site.runner.lines))
    assert runner_port is not None
    done = site.dtask("--controller", f"127.0.0.1:{runner_port.group(1)}", "status")
    assert done.returncode != 0
    assert f"runners serve {site.runner_ports[0]}-{site.runner_ports[1]}" in done.stderr, done.stderr
    assert f"{site.ports[0]}-{site.ports[1]} here" in done.stderr
    assert "50100-50199" not in done.stderr


def test_config_prints_each_value_and_its_source(site: Site) -> None:
    done = site.dtask("config", "--json", "--set", "client.timeout_s=3")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["controller.port_range"] == {"value": list(site.ports), "source": str(site.config)}
    assert data["client.controller"]["value"] == f"127.0.0.1:{site.ports[0]}"
    assert data["client.controller"]["source"] == "default (the first port of controller.port_range)"
    assert data["client.timeout_s"] == {"value": 3.0, "source": "--set client.timeout_s"}
    assert data["controller.dead_after_s"] == {"value": 3.0, "source": "default"}
    done = site.dtask("config", env={"DTASK_CONTROLLER": "ctrl.example:6000"})
    assert done.returncode == 0, done.stderr
    row = next(line for line in done.stdout.splitlines() if line.startswith("client.controller "))
    assert row.split() == ["client.controller", '"ctrl.example:6000"', "environment", "(DTASK_CONTROLLER)"]


def test_config_get_prints_one_value(site: Site) -> None:
    done = site.dtask("config", "--get", "client.controller")
    assert done.returncode == 0 and done.stdout == f"127.0.0.1:{site.ports[0]}\n", done.stderr
    done = site.dtask("config", "--get", "controller.port_range")
    assert done.stdout == f"[{site.ports[0]}, {site.ports[1]}]\n"
    done = site.dtask("config", "--get", "client.controler")
    assert done.returncode == 2 and "did you mean 'client.controller'" in done.stderr
