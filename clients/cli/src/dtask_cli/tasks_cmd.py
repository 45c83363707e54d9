"""`dtask tasks | task | logs | wait | export`: read tasks, their output, and wait for them."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click
from dtask_common.exitcodes import FAILED, OK, TIMEOUT
from dtask_common.export import export_tasks, to_json
from dtask_common.models import ParamValue, TaskState
from dtask_common.safetext import shown

from dtask_cli import output
from dtask_cli.context import CliContext
from dtask_cli.errors import CliError, StateChoice, handles_errors
from dtask_cli.params import COUNT, FINITE, TASK_ID, TASK_PARAM, param_map

if TYPE_CHECKING:
    from dtask_client import WaitCounts

STATE_CHOICES = [s.value for s in TaskState] + ["finished"]

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON (shape in the README).")


@click.command("tasks")
@click.option(
    "--state",
    "states",
    multiple=True,
    type=StateChoice(STATE_CHOICES, case_sensitive=False),
    help="Only tasks in this state (repeatable; 'finished' = succeeded, failed, cancelled, lost).",
)
@click.option("--tag", help="Only tasks carrying this tag.")
@click.option("--executor", help="Only tasks whose latest attempt ran on this executor.")
@click.option("--name", "name_contains", help="Only tasks whose name contains this text.")
@click.option(
    "--param",
    "params",
    multiple=True,
    type=TASK_PARAM,
    metavar="K=V",
    help="Only tasks with this parameter value (repeatable: all must match; 3 matches 3.0).",
)
@json_option
@click.pass_obj
@handles_errors
def tasks_cmd(
    ctx: CliContext,
    states: tuple[str, ...],
    tag: str | None,
    executor: str | None,
    name_contains: str | None,
    params: tuple[tuple[str, ParamValue], ...],
    as_json: bool,
) -> None:
    """List tasks (all pages), oldest first."""
    wanted = param_map(params)
    with ctx.client() as c:
        tasks = c.tasks(states or None, tag=tag, executor=executor, name_contains=name_contains, params=wanted)
    if as_json:
        click.echo(to_json([output.task_json(t) for t in tasks]))
    elif not tasks:
        click.echo("no tasks" + (" match" if states or tag or executor or name_contains or wanted else ""), err=True)
    else:
        click.echo(output.tasks_table(tasks))


@click.command("task")
@click.argument("task_id", type=TASK_ID)
@json_option
@click.pass_obj
@handles_errors
def task_cmd(ctx: CliContext, task_id: str, as_json: bool) -> None:
    """Show one task: spec, state, attempts, progress, result and error."""
    with ctx.client() as c:
        t = c.task(task_id)
    click.echo(to_json(output.task_json(t)) if as_json else output.task_detail(t))


@click.command("logs")
@click.argument("task_id", type=TASK_ID)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new output until the attempt ends.")
@click.option("--attempt", type=COUNT, default=0, show_default="latest", help="Attempt number.")
@click.option(
    "--tail-bytes",
    type=COUNT,
    default=0,
    show_default="the whole output",
    help="Only the last this many bytes (at most what the controller keeps, 1 MiB by default).",
)
@click.option(
    "--via-controller",
    is_flag=True,
    help="Read the output through the controller, never straight from its runner (as client.direct_logs = false).",
)
@click.pass_obj
@handles_errors
def logs_cmd(ctx: CliContext, task_id: str, follow: bool, attempt: int, tail_bytes: int, via_controller: bool) -> None:
    """Print a task's output (stdout and stderr as the task wrote them), all of it.

    The part the controller no longer keeps is read from the runner that ran it; when that runner is gone,
    a notice on stderr says which bytes are missing.
    """
    # Byte for byte, like cat: control characters are not escaped here (pipe through `cat -v` to see them).
    # Each chunk is written as it arrives: any size of output goes through in constant memory.
    out = sys.stdout.buffer
    with ctx.client() as c:
        c.on_reconnect = _reconnecting(c.address)
        direct = False if via_controller else None
        for data in c.logs(task_id, attempt, follow, tail_bytes=tail_bytes, on_notice=_notice, direct=direct):
            out.write(data)
            out.flush()


def _notice(text: str) -> None:
    """Part of the output is gone: said on stderr, so that stdout keeps exactly the task's bytes."""
    sys.stdout.flush()
    click.echo(click.style("notice: ", fg="yellow", bold=True) + shown(text), err=True)


@click.command("wait")
@click.argument("task_ids", nargs=-1, type=TASK_ID)
@click.option("--timeout", type=FINITE, help="Give up after this many seconds (exit code 9).")
@click.option("--quiet", "-q", is_flag=True, help="No progress line and no summary table.")
@json_option
@click.pass_obj
@handles_errors
def wait_cmd(ctx: CliContext, task_ids: tuple[str, ...], timeout: float | None, quiet: bool, as_json: bool) -> None:
    """Block until the tasks (default: every task) are finished.

    Exit code 0 when all succeeded, 1 when any failed, was cancelled or lost, 9 on --timeout.
    """
    tty = sys.stderr.isatty() and not quiet and not as_json
    last = [""]

    from dtask_client import WaitCounts, WaitTimeout

    def show(counts: WaitCounts) -> None:
        line = _progress_line(counts)
        if line != last[0]:
            click.echo("\r\x1b[2K" + line, err=True, nl=False)
            last[0] = line

    with ctx.client() as c:
        c.on_reconnect = _reconnecting(c.address, newline=tty)
        try:
            tasks = c.wait(list(task_ids) or None, timeout=timeout, on_counts=show if tty else None)
        except WaitTimeout as exc:
            if tty:
                click.echo("", err=True)
            raise CliError(exc.message, TIMEOUT) from None
    if tty:
        click.echo("\r\x1b[2K" + _progress_line(WaitCounts.of(tasks)), err=True)
    if as_json:
        click.echo(to_json([output.task_json(t) for t in tasks]))
    elif not quiet and tasks:
        click.echo(output.tasks_table(tasks))
    elif not quiet:
        click.echo("no tasks to wait for", err=True)
    bad = [t for t in tasks if t.state is not TaskState.SUCCEEDED]
    if bad and not as_json and not quiet:
        click.echo(click.style(f"{len(bad)} of {len(tasks)} tasks did not succeed", fg="red"), err=True)
    sys.exit(FAILED if bad else OK)


def _reconnecting(address: str, newline: bool = False) -> Callable[[str], None]:
    """What the CLI says when the controller goes away mid-command (the client waits for it)."""

    def say(reason: str) -> None:
        click.echo(
            ("\n" if newline else "")
            + click.style("warning: ", fg="yellow", bold=True)
            + shown(f"{reason}; waiting for the controller at {address} to come back (Ctrl+C to stop)"),
            err=True,
        )

    return say


def _progress_line(counts: WaitCounts) -> str:
    done, total = counts.finished, counts.total
    parts = [f"{done}/{total} finished"]
    for s in TaskState:
        if n := counts.by_state.get(s, 0):
            parts.append(click.style(f"{n} {s.value}", fg=output.STATE_COLOURS.get(s)))
    return output.bar(done / total if total else 1.0, 20) + " " + " · ".join(parts)


@click.command("export")
@click.argument("file", required=False, type=click.Path(dir_okay=False, allow_dash=True))
@click.pass_obj
@handles_errors
def export_cmd(ctx: CliContext, file: str | None) -> None:
    """Write every task as JSON (spec, state, attempts, progress, result, timestamps) to FILE or stdout."""
    with ctx.client() as c:
        data = export_tasks(c.tasks(), c.address)
    text = to_json(data) + "\n"
    if not file or file == "-":
        click.echo(text, nl=False)
        return
    try:
        Path(file).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot write {file}: {exc.strerror}") from None
    click.echo(f"exported {len(data['tasks'])} tasks to {file}", err=True)


def register(group: click.Group) -> None:
    for cmd in (tasks_cmd, task_cmd, logs_cmd, wait_cmd, export_cmd):
        group.add_command(cmd)
