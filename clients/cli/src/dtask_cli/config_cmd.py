"""`dtask config`: the effective configuration, each value with where it came from."""

from __future__ import annotations

import click
from dtask_common.config.effective import entries, shown_value
from dtask_common.export import to_json
from dtask_common.suggest import did_you_mean

from dtask_cli import output
from dtask_cli.context import CliContext
from dtask_cli.errors import handles_errors
from dtask_cli.tasks_cmd import json_option


@click.command("config")
@click.option("--get", "key", metavar="KEY", help="Print only this key's value, e.g. --get client.controller.")
@json_option
@click.pass_obj
@handles_errors
def config_cmd(ctx: CliContext, key: str | None, as_json: bool) -> None:
    """Print the effective configuration: every dtask.toml key, its value and where it came from
    (default, the file's path, the environment, --set or a flag)."""
    cfg = ctx.config()
    rows = entries(cfg, ctx.sources())
    if key is not None:
        found = next((e for e in rows if e.key == key.strip()), None)
        if found is None:
            known = [e.key for e in rows]
            raise click.UsageError(f"no configuration key {key!r}{did_you_mean(key, known)}")
        value = found.value
        click.echo(to_json(value) if as_json else value if isinstance(value, str) else shown_value(value))
        return
    if as_json:
        click.echo(to_json({e.key: {"value": e.value, "source": e.source} for e in rows}))
        return
    click.echo(output.table(["KEY", "VALUE", "SOURCE"], [[e.key, shown_value(e.value), e.source] for e in rows]))


def register(group: click.Group) -> None:
    group.add_command(config_cmd)
