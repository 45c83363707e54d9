"""Client errors as one-line CLI messages with exit codes that mean something."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import IO, Any, TypeVar

import click

from dtask_common.certs import CertError
from dtask_common.client import (
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
from dtask_common.taskfile import TaskFileError, describe

F = TypeVar("F", bound=Callable[..., Any])

# Exit codes (documented in the README).
OK = 0
FAILED = 1  # a task failed or was cancelled (wait), or any other error
USAGE = 2  # bad command line (click)
UNAVAILABLE = 3
CERTIFICATE = 4
PERMISSION = 5
NOT_FOUND = 6
INVALID = 7
CONFLICT = 8
TIMEOUT = 9

EXIT_CODES: list[tuple[type[DtaskError], int]] = [
    (WaitTimeout, TIMEOUT),
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
        click.echo(click.style("error: ", fg="red", bold=True) + self.format_message(), err=True)


def exit_code_of(exc: DtaskError) -> int:
    for cls, code in EXIT_CODES:
        if isinstance(exc, cls):
            return code
    return FAILED


def cli_error(exc: Exception) -> CliError:
    """The CliError for a client, certificate or task-file error."""
    if isinstance(exc, InvalidTask):
        msg = exc.message
        if exc.errors and "\n" not in msg:
            msg = "\n".join([msg.split(":")[0] + ":", *("  " + line for line in describe(exc.errors))])
        return CliError(msg, INVALID)
    if isinstance(exc, DtaskError):
        return CliError(exc.message, exit_code_of(exc))
    if isinstance(exc, TaskFileError):
        return CliError(str(exc), INVALID)
    if isinstance(exc, CertError):
        return CliError(str(exc), CERTIFICATE)
    return CliError(str(exc), FAILED)


def handles_errors(f: F) -> F:
    """Turn DtaskError, TaskFileError and CertError raised by a command into one-line errors."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return f(*args, **kwargs)
        except (DtaskError, TaskFileError, CertError) as exc:
            raise cli_error(exc) from None

    return wrapper  # type: ignore[return-value]
