"""`dtask controller` and `dtask runner` come from the services' entry points; a missing service says how to get it."""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points

import click
import pytest
from click.testing import CliRunner, Result
from dtask_cli import cli, plugins
from dtask_cli.errors import DtaskGroup

SERVICE_COMMANDS = {
    "controller": "dtask_controller.command:controller_cmd",
    "runner": "dtask_runner.command:runner_cmd",
}


def test_the_services_register_their_commands() -> None:
    registered = {ep.name: ep.value for ep in entry_points(group=plugins.COMMANDS_GROUP)}
    assert registered == SERVICE_COMMANDS


def test_dtask_help_lists_the_service_commands(run: Callable[..., Result]) -> None:
    r = run("--help")
    assert r.exit_code == 0, r.output
    assert {"controller", "runner", "tasks", "submit", "certs"} <= _listed(r.output)
    assert "Run the controller in the foreground." in r.output


@pytest.mark.parametrize("name", sorted(SERVICE_COMMANDS))
def test_a_service_command_comes_from_its_entry_point(run: Callable[..., Result], name: str) -> None:
    r = run(name, "--help")
    assert r.exit_code == 0, r.output
    assert f" {name} [OPTIONS]" in r.output and "--port-range" in r.output
    command = cli.get_command(click.Context(cli), name)
    module, _, attr = SERVICE_COMMANDS[name].partition(":")
    assert command is not None and (command.callback.__module__, command.callback.__name__) == (module, attr)  # type: ignore[union-attr]


def test_a_service_that_is_not_installed_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    def only_others(group: str) -> list[EntryPoint]:
        assert group == plugins.COMMANDS_GROUP
        return [ep for ep in entry_points(group=group) if ep.name != "controller"]

    monkeypatch.setattr(plugins, "entry_points", only_others)
    group = DtaskGroup("dtask", commands={k: v for k, v in cli.commands.items() if k not in SERVICE_COMMANDS})
    assert group.commands["controller"].hidden and "runner" not in group.commands
    result = CliRunner().invoke(group, ["controller", "--port-range", "50051-50052"], prog_name="dtask")
    assert result.exit_code == 1
    assert (
        "error: the controller is not installed here: pip install dtask-controller (or `make install`)" in result.output
    )
    listed = _listed(CliRunner().invoke(group, ["--help"], prog_name="dtask").output)
    assert "runner" in listed and "tasks" in listed and "controller" not in listed


def _listed(help_text: str) -> set[str]:
    """The command names a group's --help lists."""
    lines = help_text.split("Commands:")[1].splitlines()
    return {line.split()[0] for line in lines if line.startswith("  ") and not line.startswith("   ")}
