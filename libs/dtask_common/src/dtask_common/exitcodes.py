"""The exit codes of dtask's commands (documented in the README), and the error that carries one."""

from __future__ import annotations

OK = 0
FAILED = 1  # a task failed or was cancelled (wait), or any other error
USAGE = 2  # bad command line
UNAVAILABLE = 3
CERTIFICATE = 4
PERMISSION = 5
NOT_FOUND = 6
INVALID = 7
CONFLICT = 8
TIMEOUT = 9
INTERRUPTED = 130  # Ctrl+C


class CommandError(Exception):
    """A command that cannot go on: a one-line message for the user and the exit code it means."""

    def __init__(self, message: str, exit_code: int = FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
