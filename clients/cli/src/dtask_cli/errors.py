"""Client errors as one-line CLI messages with exit codes that mean something."""

from __future__ import annotations

import functools
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import IO, Any, TypeVar

import click
from dtask_client import (
    BadAddress,
    CertificateError,
    Conflict,
    ControllerUnavailable,
    DtaskError,
    InvalidTask,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    WaitTimeout,
)
from dtask_client.options import hoist_settings
from dtask_common.certs import CertError
from dtask_common.exitcodes import (
    CERTIFICATE,
    CONFLICT,
    FAILED,
    INTERRUPTED,
    INVALID,
    NOT_FOUND,
    OK,
    PERMISSION,
    TIMEOUT,
    UNAVAILABLE,
    USAGE,
    CommandError,
)
from dtask_common.safetext import shown
from dtask_common.suggest import did_you_mean
from dtask_common.taskfile import TaskFileError, describe

from dtask_cli.plugins import PluginGroup

F = TypeVar("F", bound=Callable[..., Any])

SHOWN_ERRORS = 20  # problems of a rejected submission printed; the rest are counted

EXIT_CODES: list[tuple[type[DtaskError], int]] = [
    (WaitTimeout, TIMEOUT),
    (BadAddress, USAGE),
    (ControllerUnavailable, UNAVAILABLE),
    (CertificateError, CERTIFICATE),
    (PermissionDenied, PERMISSION),
    (NotFound, NOT_FOUND),
    (InvalidTask, INVALID),
    (Conflict, CONFLICT),
    (ResourceExhausted, FAILED),
]


class CliError(click.ClickException):
    """A failed command: `error: MESSAGE` on stderr and a meaningful exit code."""

    def __init__(self, message: str, exit_code: int = FAILED):
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]

    def show(self, file: IO[Any] | None = None) -> None:
        text = "\n".join(shown(line) for line in self.format_message().split("\n"))  # may quote the controller
        click.echo(click.style("error: ", fg="red", bold=True) + text, err=True)


def exit_code_of(exc: DtaskError) -> int:
    for cls, code in EXIT_CODES:
        if isinstance(exc, cls):
            return code
    return FAILED


def cli_error(exc: Exception) -> CliError:
    """The CliError for a client, certificate, task-file or command error."""
    if isinstance(exc, InvalidTask):
        msg = exc.message
        if len(exc.errors) == 1 and not exc.omitted and "\n" not in msg:
            msg = describe(exc.errors)[0]
        elif exc.errors and "\n" not in msg:
            lines = describe(exc.errors[:SHOWN_ERRORS])
            more = len(exc.errors) - len(lines) + exc.omitted
            msg = "\n".join(
                [msg.split(":")[0] + ":", *("  " + line for line in lines), *([f"  … and {more} more"] if more else [])]
            )
        elif "\n" in msg:
            msg = _first_lines(msg)
        return CliError(msg, INVALID)
    if isinstance(exc, PermissionDenied):
        return CliError(f"{exc.message}; pass an operator certificate with --cert FILE", PERMISSION)
    if isinstance(exc, DtaskError):
        return CliError(exc.message, exit_code_of(exc))
    if isinstance(exc, TaskFileError):
        return CliError(_first_lines(str(exc)), INVALID)
    if isinstance(exc, CertError):
        return CliError(str(exc), CERTIFICATE)
    if isinstance(exc, CommandError):
        return CliError(exc.message, exc.exit_code)
    return CliError(str(exc), FAILED)


def _first_lines(text: str) -> str:
    """The first SHOWN_ERRORS lines of a list of problems, and how many more there are."""
    lines = text.split("\n")
    if len(lines) <= SHOWN_ERRORS + 1:
        return text
    return "\n".join([*lines[:SHOWN_ERRORS], f"… and {len(lines) - SHOWN_ERRORS} more"])


def handles_errors(f: F) -> F:
    """Turn DtaskError, TaskFileError and CertError raised by a command into one-line errors."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return f(*args, **kwargs)
        except (DtaskError, TaskFileError, CertError) as exc:
            raise cli_error(exc) from None

    return wrapper  # type: ignore[return-value]


class StateChoice(click.Choice):
    """click.Choice whose error names the closest valid value."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter:
            hint = did_you_mean(str(value).lower(), [str(c) for c in self.choices])
            self.fail(f"{value!r} is not a state{hint}; use one of {', '.join(map(str, self.choices))}", param, ctx)


def _show_usage_error(exc: click.UsageError, hint: str = "") -> None:
    """One line: `error: MESSAGE (see dtask CMD --help)`."""
    where = exc.ctx.command_path if exc.ctx is not None else "dtask"
    text = hint or exc.format_message().rstrip(".") + f" (see `{where} --help`)"
    click.echo(click.style("error: ", fg="red", bold=True) + text, err=True)


class DtaskGroup(PluginGroup):
    """The `dtask` group: every error is one line on stderr with its exit code; Ctrl+C exits 130 quietly."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,  # type: ignore[override]
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        argv = hoist_settings(list(sys.argv[1:] if args is None else args))
        try:
            rv = super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as exc:
            _show_usage_error(exc, self._misplaced(exc, argv))
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            if not isinstance(exc, CliError):
                exc = CliError(exc.format_message(), exc.exit_code)
            exc.show()
            sys.exit(exc.exit_code)
        except (click.Abort, KeyboardInterrupt):
            click.echo("", err=True)  # end a progress line or the ^C echo
            sys.exit(INTERRUPTED)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except BrokenPipeError:
            # `dtask tasks | head`: the reader left; nothing more to say
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(FAILED)
        except (DtaskError, TaskFileError, CertError, CommandError) as exc:
            err = cli_error(exc)
            err.show()
            sys.exit(err.exit_code)
        except Exception as exc:  # a bug in dtask: say so in one line, the traceback with DTASK_DEBUG=1
            if os.environ.get("DTASK_DEBUG"):
                traceback.print_exc()
            click.echo(
                click.style("error: ", fg="red", bold=True)
                + shown(f"internal error: {type(exc).__name__}: {exc} (set DTASK_DEBUG=1 for the traceback)"),
                err=True,
            )
            sys.exit(FAILED)
        if standalone_mode:
            sys.exit(rv if isinstance(rv, int) else OK)
        return rv

    def _misplaced(self, exc: click.UsageError, argv: list[str]) -> str:
        """For `dtask --json tasks`: the hint that the option belongs after the command."""
        if not isinstance(exc, click.NoSuchOption) or exc.ctx is None or exc.ctx.command is not self:
            return ""
        names = self.list_commands(exc.ctx)
        name = next((a for a in argv if a in names), None)
        command = self.get_command(exc.ctx, name) if name else None
        if command is None or not any(exc.option_name in p.opts for p in command.params):
            return ""
        return f"{exc.option_name} is an option of `dtask {name}`: put it after the command (dtask {name} {exc.option_name})"
