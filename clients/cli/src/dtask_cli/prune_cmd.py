"""`dtask prune`: delete finished tasks from the controller's store, after saying which and asking."""

from __future__ import annotations

import re
import sys
import time
from typing import Any

import click
from dtask_common.humanize import clock
from dtask_common.models import PruneResult
from dtask_common.safetext import shown

from dtask_cli.context import CliContext
from dtask_cli.errors import handles_errors

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
LISTED = 20  # tasks named before asking; the count covers the rest


class Age(click.ParamType):
    """An age like 30d, 12h, 90m, 2w or 3600s: seconds before now."""

    name = "age"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, float):
            return value
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", str(value))
        if m is None:
            self.fail(f"{value!r} is not an age: give a number and a unit, like 30d, 12h, 90m, 2w or 3600s", param, ctx)
        return float(m.group(1)) * UNITS[m.group(2)]


@click.command("prune")
@click.option(
    "--finished-before", "age", type=Age(), required=True, help="Tasks that finished this long ago: 30d, 12h."
)
@click.option("--tag", default="", help="Only tasks with this tag.")
@click.option("--dry-run", is_flag=True, help="Say what would be deleted; delete nothing.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask (needed when stdin is not a terminal).")
@click.pass_obj
@handles_errors
def prune_cmd(ctx: CliContext, age: float, tag: str, dry_run: bool, yes: bool) -> None:
    """Delete finished tasks (succeeded, failed, cancelled, lost) with their attempts, output and results
    (operator). A task that a pending or running task depends on is kept. The store file shrinks."""
    before = time.time() - age
    with ctx.client() as c:
        plan = c.prune(before, tag=tag, dry_run=True, list_limit=LISTED)
        click.echo(_plan_text(plan, before, tag))
        if dry_run or not plan.count:
            if plan.count:
                click.echo("dry run: nothing deleted")
            return
        if not yes:
            if not sys.stdin.isatty():
                raise click.UsageError("stdin is not a terminal, so dtask prune cannot ask: add --yes to delete them")
            click.confirm(f"Delete these {plan.count} tasks?", abort=True)
        done = c.prune(before, tag=tag, list_limit=0)
    click.echo(
        f"deleted {done.count} task{'' if done.count == 1 else 's'}; the store shrank by {_size(done.freed_bytes)}"
    )


def _plan_text(plan: PruneResult, before: float, tag: str) -> str:
    what = f"finished before {clock(before, year=True)}" + (f" tagged {shown(tag)}" if tag else "")
    if not plan.count:
        lines = [f"no finished tasks {what} to delete"]
    else:
        lines = [f"{plan.count} finished task{'' if plan.count == 1 else 's'} {what} will be deleted:"]
        lines += [f"  {t.id}  {t.state.value:<9}  {shown(t.name)}" for t in plan.tasks]
        if plan.count > len(plan.tasks):
            lines.append(f"  ... and {plan.count - len(plan.tasks)} more")
    if plan.kept_as_dependencies:
        lines.append(f"{plan.kept_as_dependencies} more are kept: pending or running tasks depend on them")
    return "\n".join(lines)


def _size(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} bytes"  # pragma: no cover


def register(group: click.Group) -> None:
    group.add_command(prune_cmd)
