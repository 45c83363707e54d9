"""The connection options `dtask` and `dtask-tui` share (click), and the context they build."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click
from dtask_common.config import Config
from dtask_common.exitcodes import USAGE, CommandError
from dtask_common.invocation import Invocation


def global_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """Options accepted before any subcommand."""
    options = [
        click.option(
            "--config", "config_path", type=click.Path(dir_okay=False), help="dtask.toml to read (env DTASK_CONFIG)."
        ),
        click.option(
            "--controller",
            envvar="DTASK_CONTROLLER",
            help="Controller address host:port (env DTASK_CONTROLLER; default: [client] controller, else the first "
            "port of [controller] port_range on localhost, 50051).",
        ),
        click.option(
            "--certs", type=click.Path(file_okay=False), help="Certificate directory (default $DTASK_HOME/certs)."
        ),
        click.option(
            "--cert",
            type=click.Path(dir_okay=False),
            help="Client certificate (default the operator certificate in --certs).",
        ),
        click.option("--key", type=click.Path(dir_okay=False), help="Client key matching --cert."),
        click.option(
            "--set",
            "settings",
            multiple=True,
            metavar="KEY=VALUE",
            help="Override any dtask.toml key, e.g. --set controller.dead_after_s=5.",
        ),
        click.option("-v", "--verbose", is_flag=True, help="Debug logging."),
    ]
    return functools.reduce(lambda acc, opt: opt(acc), reversed(options), f)


def hoist_settings(argv: list[str]) -> list[str]:
    """argv with every `--set KEY=VALUE` (or `--set=KEY=VALUE`) before `--` moved to the front, so that
    `dtask controller --set K=V` means what `dtask --set K=V controller` does."""
    end = argv.index("--") if "--" in argv else len(argv)
    hoisted: list[str] = []
    rest: list[str] = []
    i = 0
    while i < end:
        arg = argv[i]
        if arg == "--set" and i + 1 < end:
            hoisted += argv[i : i + 2]
            i += 2
            continue
        (hoisted if arg.startswith("--set=") else rest).append(arg)
        i += 1
    return [*hoisted, *rest, *argv[end:]]


@dataclass
class OptionsContext(Invocation):
    """The global options of a click command line: a bad --set is a usage error, a bad config a click error."""

    def config(self, overrides: dict[str, Any] | None = None) -> Config:
        try:
            return super().config(overrides)
        except CommandError as exc:
            if exc.exit_code == USAGE:
                raise click.UsageError(exc.message) from None
            raise click.ClickException(exc.message) from None
