"""`dtask submit FILE.toml` and `dtask submit [options] -- CMD ARGS...`: queue tasks, print their ids."""

from __future__ import annotations

import re
import sys
from typing import Any

import click
from dtask_common import taskfile
from dtask_common.exitcodes import INVALID
from dtask_common.export import to_json
from dtask_common.ids import shown as quoted
from dtask_common.models import PROGRESS_PARSERS, Resources, TaskSpec
from dtask_common.numbers import INT64_MAX, is_finite
from dtask_common.safetext import shown

from dtask_cli.context import CliContext
from dtask_cli.errors import CliError, handles_errors
from dtask_cli.params import COUNT, FINITE, PRIORITY, TASK_ID, TASK_PARAM, param_map

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)
_TIME = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$", re.IGNORECASE)


def memory_mb(text: str) -> int:
    """'512' or '512M' -> 512 MiB; '4G' -> 4096; 'K'/'T' also work."""
    m = _SIZE.match(text)
    if not m:
        raise click.BadParameter(f"{text!r} is not a size; use e.g. 512M or 4G (plain numbers are MiB)")
    n, unit = float(m.group(1)), m.group(2).lower()
    scale = {"": 1, "m": 1, "k": 1 / 1024, "g": 1024, "t": 1024 * 1024}[unit]
    if not is_finite(n * scale) or n * scale > INT64_MAX:
        raise click.BadParameter(f"{quoted(text)} is larger than any machine's memory; use e.g. 512M or 4G")
    return max(1, round(n * scale)) if n else 0


def seconds(text: str) -> float:
    """'90', '90s', '10m', '2h', '1d' -> seconds."""
    m = _TIME.match(text)
    if not m:
        raise click.BadParameter(f"{text!r} is not a duration; use e.g. 90, 90s, 10m or 2h")
    value = float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[(m.group(2) or "").lower()]
    if not is_finite(value):
        raise click.BadParameter(f"{quoted(text)} is too long a duration to write down; use e.g. 90, 90s, 10m or 2h")
    return value


def pairs(values: tuple[str, ...], what: str) -> dict[str, str]:
    out = {}
    for v in values:
        k, sep, val = v.partition("=")
        if not sep or not k.strip():
            raise click.BadParameter(f"{v!r}: use {what} KEY=VALUE")
        out[k.strip()] = val
    return out


class SubmitCommand(click.Command):
    """Remembers where `--` was, so `submit FILE` and `submit -- CMD` cannot be confused."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["dtask.after_dashdash"] = len(args) - args.index("--") - 1 if "--" in args else None
        return super().parse_args(ctx, args)


@click.command("submit", cls=SubmitCommand)
@click.argument("args", nargs=-1, type=click.UNPROCESSED, metavar="FILE.toml | -- CMD [ARGS]...")
@click.option("--name", help="Task name.")
@click.option("--cpus", type=FINITE, help="CPU cores the task needs.")
@click.option("--memory", help="Memory the task needs, e.g. 512M or 4G (plain numbers are MiB).")
@click.option("--gpus", type=COUNT, help="Number of GPUs the task needs.")
@click.option("--priority", type=PRIORITY, help="Higher runs first (default 0).")
@click.option("--retries", type=COUNT, help="Attempts after the first on failure or loss (default 0).")
@click.option("--timeout", help="Wall-clock limit of one attempt: 90, 90s, 10m, 2h.")
@click.option(
    "--lost-after",
    "lost_after",
    metavar="SECONDS",
    help="Out of touch with its runner this long, an attempt is lost and queued again: 90, 10m "
    "(default: the controller's lost_after_s).",
)
@click.option("--label", "labels", multiple=True, metavar="K=V", help="Runner label the task requires.")
@click.option("--tag", "tags", multiple=True, help="Tag for filtering (repeatable).")
@click.option(
    "--param",
    "params",
    multiple=True,
    type=TASK_PARAM,
    metavar="K=V",
    help="Parameter of the task, typed like TOML: lr=0.1 a float, n=3 an int, model=cnn a string (repeatable).",
)
@click.option("--after", "after", multiple=True, type=TASK_ID, help="Run only after task ID succeeded.")
@click.option("--progress", type=click.Choice(PROGRESS_PARSERS), help="Progress parser (default auto).")
@click.option("--progress-pattern", help="Regex with named groups step/total/percent (--progress regex).")
@click.option("--cwd", help="Working directory on the runner.")
@click.option("--env", "env", multiple=True, metavar="K=V", help="Environment variable for the task.")
@click.option(
    "--venv",
    metavar="DIR",
    help="venv the task runs in (its bin first on PATH); a relative DIR is made absolute here. "
    "With a task file: for its tasks that name none.",
)
@click.option(
    "--conda",
    metavar="ENV",
    help="conda env the task runs in: a directory, or a name in the runner's conda envs. "
    "With a task file: for its tasks that name none.",
)
@click.option("--json", "as_json", is_flag=True, help='Print {"ids": [...]} instead of one id per line.')
@click.pass_context
@handles_errors
def submit_cmd(click_ctx: click.Context, args: tuple[str, ...], as_json: bool, **opts: Any) -> None:
    """Queue the tasks of a TOML task file, or one command given after `--`; print the new ids.

    \b
      dtask submit examples/sweep.toml
      dtask submit --name hello --retries 2 -- python train.py --lr 0.1
      dtask submit --param lr=0.1 --param model=cnn -- python train.py --lr 0.1
      dtask submit --gpus 1 -- 'python train.py > out.log'   (one argument: run with sh -c)
    """
    ctx: CliContext = click_ctx.obj
    after = click_ctx.meta.get("dtask.after_dashdash")
    if after is not None:
        if len(args) > after:
            raise click.UsageError("give either a task file or `-- CMD ARGS...`, not both")
        if not args:
            raise click.UsageError("nothing after `--`; give the command to run, e.g. -- python train.py")
        specs = [_spec_from_flags(list(args[len(args) - after :]), opts)]
    else:
        if len(args) != 1:
            raise click.UsageError("give one task file, or the command after `--` (dtask submit -- CMD ARGS...)")
        given = [k for k, v in opts.items() if v not in (None, (), False) and k not in ("venv", "conda")]
        if given:
            raise click.UsageError(
                f"--{given[0].replace('_', '-')} applies to `-- CMD` submissions; "
                "in a task file set it in the [[task]] table"
            )
        specs = _with_python_env(_load(args[0]), opts)
    if after is not None and not opts["cwd"]:
        _hint_relative_paths(specs[0])
    from dtask_client import ResourceExhausted

    with ctx.client() as c:
        try:
            ids = c.submit(specs)
        except ResourceExhausted as exc:
            if after is not None:
                raise
            raise CliError(
                f"{args[0]}: {exc.message}: split the task file, e.g. along a matrix axis (a task "
                "in a later file can depend on tasks of an earlier one by id)"
            ) from None
    if as_json:
        click.echo(to_json({"ids": ids}))
    else:
        click.echo("\n".join(shown(i) for i in ids))
        if sys.stderr.isatty():
            click.echo(f"queued {len(ids)} task{'s' if len(ids) != 1 else ''}", err=True)


def _load(path: str) -> list[TaskSpec]:
    if path == "-":
        return taskfile.parse(sys.stdin.read(), "<stdin>")
    import os

    if os.path.isdir(path):
        raise click.UsageError(f"{path!r} is a directory; give a task file (FILE.toml), e.g. examples/sweep.toml")
    if not path.endswith(".toml"):
        if not os.path.exists(path) or os.access(path, os.X_OK):
            raise click.UsageError(
                f"{path!r} is not a task file; to run a command put it after `--`: dtask submit -- {path}"
            )
    return taskfile.load(path)


def _python_env(opts: dict[str, Any]) -> tuple[str, str]:
    """--venv and --conda as sent: a relative directory made absolute here (a conda name stays a name)."""
    import os

    venv, conda = opts.get("venv") or "", opts.get("conda") or ""
    if venv and conda:
        raise click.UsageError("give either --venv or --conda, not both")
    if venv and "{" not in venv:
        venv = os.path.abspath(os.path.expanduser(venv))
    if conda and "/" in conda and "{" not in conda:
        conda = os.path.abspath(os.path.expanduser(conda))
    return venv, conda


def _with_python_env(specs: list[TaskSpec], opts: dict[str, Any]) -> list[TaskSpec]:
    """The task file's specs, those that name no environment given --venv or --conda."""
    import dataclasses

    venv, conda = _python_env(opts)
    if not venv and not conda:
        return specs
    return [s if s.venv or s.conda else dataclasses.replace(s, venv=venv, conda=conda) for s in specs]


def _hint_relative_paths(spec: TaskSpec) -> None:
    """Warn when the command names a file relative to here: tasks run in the runner's work dir."""
    import os
    import shlex

    try:
        words = list(spec.argv) or shlex.split(spec.shell)
    except ValueError:
        return
    local = [w for w in words[:8] if not os.path.isabs(w) and os.sep in w and os.path.isfile(w)]
    if local:
        click.echo(
            click.style("note: ", fg="yellow", bold=True) + f"{local[0]} is relative to this directory, "
            'but a task runs in the runner\'s work dir; add --cwd "$PWD" to run it here',
            err=True,
        )


def _spec_from_flags(command: list[str], o: dict[str, Any]) -> TaskSpec:
    argv: tuple[str, ...] = ()
    shell = ""
    if len(command) == 1 and any(ch.isspace() for ch in command[0]):
        shell = command[0]
    else:
        argv = tuple(command)
    spec = TaskSpec(
        name=o["name"] or "",
        argv=argv,
        shell=shell,
        cwd=o["cwd"] or "",
        env=pairs(o["env"], "--env"),
        resources=Resources(
            cpus=o["cpus"] or 0.0, memory_mb=memory_mb(o["memory"]) if o["memory"] else 0, gpus=o["gpus"] or 0
        ),
        labels=pairs(o["labels"], "--label"),
        priority=o["priority"] or 0,
        max_retries=o["retries"] or 0,
        timeout_s=seconds(o["timeout"]) if o["timeout"] else 0.0,
        lost_after_s=seconds(o["lost_after"]) if o["lost_after"] else 0.0,
        depends_on=tuple(o["after"]),
        tags=tuple(o["tags"]),
        progress=o["progress"] or "auto",
        progress_pattern=o["progress_pattern"] or "",
        params=param_map(o["params"]),
        venv=_python_env(o)[0],
        conda=_python_env(o)[1],
    )
    errors = spec.errors()
    if errors:
        raise CliError("invalid task: " + "; ".join(f"{e.field}: {e.message}" for e in errors), INVALID)
    return spec


def register(group: click.Group) -> None:
    group.add_command(submit_cmd)
