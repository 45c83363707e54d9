"""`dtask executors | usage | cancel | retry | drain | pause | resume | whoami`: executors and the queue."""

from __future__ import annotations

import click
from dtask_client import DtaskError
from dtask_common.export import to_json
from dtask_common.models import TaskState
from dtask_common.safetext import shown

from dtask_cli import output
from dtask_cli.context import CliContext
from dtask_cli.errors import handles_errors
from dtask_cli.params import COUNT, TASK_ID
from dtask_cli.tasks_cmd import json_option


@click.command("executors")
@click.option("--all", "include_gone", is_flag=True, help="Also list executors that are gone.")
@json_option
@click.pass_obj
@handles_errors
def executors_cmd(ctx: CliContext, include_gone: bool, as_json: bool) -> None:
    """List the executors (runners): state, load, GPUs and running tasks."""
    with ctx.client() as c:
        executors = c.executors(include_gone=include_gone)
    if as_json:
        click.echo(to_json([output.executor_json(e) for e in executors]))
    elif not executors:
        click.echo("no executors; start one with `make run-runner` or `dtask runner`", err=True)
    else:
        click.echo(output.executors_table(executors))


@click.command("usage")
@click.argument("executor", required=False)
@click.option("--history", type=COUNT, default=60, show_default=True, help="Samples of history (JSON only).")
@json_option
@click.pass_obj
@handles_errors
def usage_cmd(ctx: CliContext, executor: str | None, history: int, as_json: bool) -> None:
    """Latest resource usage per executor: CPU (total and per core), RAM, swap, GPU, GPU memory."""
    with ctx.client() as c:
        states = {e.name: e.state.value for e in c.executors(include_gone=True)}  # the words of `executors`
        usage = c.resource_usage(executor, history=history)
    if as_json:
        click.echo(to_json([output.usage_json(u, states=states) for u in usage]))
    elif not usage:
        click.echo("no executors report usage yet", err=True)
    else:
        click.echo(output.usage_table(usage, states))


@click.command("cancel")
@click.argument("task_ids", nargs=-1, required=True, type=TASK_ID)
@click.pass_obj
@handles_errors
def cancel_cmd(ctx: CliContext, task_ids: tuple[str, ...]) -> None:
    """Cancel pending or running tasks (a running one is stopped: SIGTERM, grace, SIGKILL)."""
    _each(ctx, task_ids, "cancel")


@click.command("retry")
@click.argument("task_ids", nargs=-1, required=True, type=TASK_ID)
@click.pass_obj
@handles_errors
def retry_cmd(ctx: CliContext, task_ids: tuple[str, ...]) -> None:
    """Start a new attempt of finished tasks."""
    _each(ctx, task_ids, "retry")


def _each(ctx: CliContext, task_ids: tuple[str, ...], what: str) -> None:
    """Apply cancel/retry to every id; report each; fail with the first error's exit code."""
    first: DtaskError | None = None
    with ctx.client() as c:
        for tid in task_ids:
            try:
                t = getattr(c, what)(tid)
            except DtaskError as exc:
                if len(task_ids) == 1:
                    raise
                first = first or exc
                click.echo(click.style("error: ", fg="red", bold=True) + shown(f"{tid}: {exc.message}"), err=True)
                continue
            stopping = (
                " (stopping: SIGTERM, then SIGKILL after the grace)"
                if (what == "cancel" and t.state is TaskState.RUNNING)
                else ""
            )
            click.echo(f"{shown(t.id)}  {shown(t.name)}  {output.state_cell(t.state.value)}{stopping}")
    if first is not None:
        from dtask_cli.errors import CliError, exit_code_of

        raise CliError(f"{what} failed for some tasks", exit_code_of(first))


@click.command("drain")
@click.argument("name")
@click.option("--undo", "undrain", is_flag=True, help="Give the executor work again.")
@click.pass_obj
@handles_errors
def drain_cmd(ctx: CliContext, name: str, undrain: bool) -> None:
    """Stop giving new work to an executor (its running tasks finish)."""
    with ctx.client() as c:
        e = c.drain(name, undrain=undrain)
    click.echo(f"{shown(e.name)}  {output.state_cell(e.state.value)}")


@click.command("pause")
@click.pass_obj
@handles_errors
def pause_cmd(ctx: CliContext) -> None:
    """Stop dispatching tasks (running ones continue)."""
    with ctx.client() as c:
        click.echo(output.queue_text(c.pause()))


@click.command("resume")
@click.pass_obj
@handles_errors
def resume_cmd(ctx: CliContext) -> None:
    """Resume dispatching tasks."""
    with ctx.client() as c:
        click.echo(output.queue_text(c.resume()))


@click.command("status")
@json_option
@click.pass_obj
@handles_errors
def status_cmd(ctx: CliContext, as_json: bool) -> None:
    """Who you are to the controller, and the queue's counts."""
    with ctx.client() as c:
        ident, q = c.whoami(), c.queue()
    if as_json:
        click.echo(
            to_json(
                {
                    "controller": c.address,
                    "controller_name": ident.controller_name,
                    "version": ident.version,
                    "role": ident.role,
                    "name": ident.name,
                    "queue": output.queue_json(q),
                }
            )
        )
        return
    click.echo(
        shown(
            f"controller {ident.controller_name} at {c.address} (dtask {ident.version}); "
            f"you are {ident.role} {ident.name!r}"
        )
    )
    click.echo(output.queue_text(q))


def register(group: click.Group) -> None:
    for cmd in (executors_cmd, usage_cmd, cancel_cmd, retry_cmd, drain_cmd, pause_cmd, resume_cmd, status_cmd):
        group.add_command(cmd)
