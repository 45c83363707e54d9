"""`dtask shell`: an interactive Python prompt with a connected client and the original's query names."""

from __future__ import annotations

import ast
import builtins
import code
import sys
import traceback
from collections.abc import Callable
from typing import Any

import click
from dtask_client import Controller, DtaskError
from dtask_common import models
from dtask_common.exitcodes import FAILED, USAGE
from dtask_common.models import ExecutorInfo, ExecutorUsage, QueueStatus, Task
from dtask_common.safetext import shown

from dtask_cli import output
from dtask_cli.context import CliContext
from dtask_cli.errors import CliError, handles_errors

#: Names of the original's remote shell, plus the rest of the client, bound to the connection.
SHELL_NAMES = (
    "executors",
    "finished",
    "resource_usage",
    "tasks",
    "tasks_pending",
    "tasks_running",
    "tasks_finished",
    "add_task",
    "add_tasks",
    "task",
    "submit",
    "cancel",
    "retry",
    "drain",
    "pause",
    "resume",
    "wait",
    "logs",
    "watch",
    "queue",
    "whoami",
    "executor",
)


def pretty(value: Any) -> str | None:
    """Readable text for dtask models and lists of them; None for anything else."""
    if isinstance(value, Task):
        return _task_line(value)
    if isinstance(value, ExecutorInfo):
        return output.executors_table([value])
    if isinstance(value, QueueStatus):
        return output.queue_text(value)
    if isinstance(value, list) and value:
        if all(isinstance(v, Task) for v in value):
            return output.tasks_table(value) + f"\n({len(value)} tasks)"
        if all(isinstance(v, ExecutorInfo) for v in value):
            return output.executors_table(value)
        if all(isinstance(v, ExecutorUsage) for v in value):
            return output.usage_table(value)
    return None


def _task_line(t: Task) -> str:
    where = f" on {t.executor}" if t.executor else ""
    extra = f" ({output.duration(t.duration_s)})" if t.duration_s is not None else ""
    progress = f" {output.progress_text(t.progress)}" if t.state is models.TaskState.RUNNING and t.progress else ""
    result = f" result={t.result}" if t.result else ""
    error = f" error={t.error.strip().splitlines()[-1]!r}" if t.error.strip() else ""
    text = shown(f"{where}{extra}{progress}{result}{error}")
    return f"<Task {shown(t.id)} {shown(repr(t.name))} {output.state_cell(t.state.value)}{text}>"


def make_displayhook(colour: bool) -> Callable[[Any], None]:
    """sys.displayhook that shows models readably and everything else as usual."""

    def hook(value: Any) -> None:
        if value is None:
            return
        builtins._ = None  # type: ignore[attr-defined]
        text = pretty(value)
        if text is None:
            text = repr(value)
        click.echo(text, color=colour)
        builtins._ = value  # type: ignore[attr-defined]

    return hook


def namespace(client: Controller) -> dict[str, Any]:
    import os

    ns: dict[str, Any] = {"dtask": client, "models": models, "os": os}
    for name in SHELL_NAMES:
        ns[name] = getattr(client, name)
    for name in ("TaskSpec", "Resources", "TaskState", "Task", "ExecutorInfo"):
        ns[name] = getattr(models, name)
    return ns


def banner(client: Controller, role: str, name: str, controller_name: str, version: str) -> str:
    return (
        shown(
            f"dtask shell: connected to {controller_name or 'the controller'} at {client.address} "
            f"(dtask {version}) as {role} {name!r}"
        )
        + "\n"
        "  dtask            the client (help(dtask) lists every method)\n"
        "  executors()  finished()  resource_usage()  tasks()  tasks_pending()  tasks_running()\n"
        "  tasks_finished()  task(id)  add_task('cmd', name=..., gpus=...)  add_tasks([...] | 'file.toml')\n"
        "  cancel(id)  retry(id)  drain(name)  pause()  resume()  wait()  logs(id)  watch()\n"
        "Ctrl+D to leave."
    )


@click.command("shell")
@click.option("-c", "command", help="Run these Python statements instead of an interactive prompt.")
@click.pass_obj
@handles_errors
def shell_cmd(ctx: CliContext, command: str | None) -> None:
    """An interactive Python prompt connected to the controller (IPython when installed)."""
    client = ctx.client()
    ident = client.whoami()
    ns = namespace(client)
    text = banner(client, ident.role, ident.name, ident.controller_name, ident.version)
    colour = sys.stdout.isatty()
    old_hook = sys.displayhook
    sys.displayhook = make_displayhook(colour)
    try:
        if command is not None:
            run_code(command, ns)
            return
        if sys.stdin.isatty() and _ipython(ns, text):
            return
        Console(ns).interact(banner=text, exitmsg="")
    finally:
        sys.displayhook = old_hook
        client.close()


def run_code(command: str, ns: dict[str, Any]) -> None:
    """Run -c statements; expression values are shown like at the prompt; dtask errors end the command."""
    try:
        tree = ast.parse(command, "<dtask shell -c>")
    except SyntaxError as exc:
        raise CliError(f"-c: {exc.msg} (line {exc.lineno}): {(exc.text or '').strip()}", USAGE) from None
    compiled = compile(ast.Interactive(body=tree.body), "<dtask shell -c>", "single")
    try:
        exec(compiled, ns)
    except DtaskError:
        raise
    except Exception:
        traceback.print_exc()
        raise CliError("-c: the code above raised an exception", FAILED) from None


class Console(code.InteractiveConsole):
    """The plain prompt: a dtask error is one line, not a traceback."""

    def showtraceback(self) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, DtaskError):
            self.write(f"{type(exc).__name__}: {shown(exc.message)}\n")
            return
        super().showtraceback()


def _ipython(ns: dict[str, Any], text: str) -> bool:
    try:
        from IPython.terminal.embed import InteractiveShellEmbed  # type: ignore[import-not-found]
    except ImportError:
        return False
    shell = InteractiveShellEmbed(banner1=text, user_ns=ns)
    formatter = shell.display_formatter.formatters["text/plain"]
    for cls in (Task, ExecutorInfo, QueueStatus, list):
        formatter.for_type(cls, lambda v, p, cycle: p.text(pretty(v) or repr(v)))
    shell()
    return True


def register(group: click.Group) -> None:
    group.add_command(shell_cmd)
