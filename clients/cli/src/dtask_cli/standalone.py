"""`dtask-runner` and `dtask-controller`: a service's `dtask` command as a program of its own."""

from __future__ import annotations

import sys
from collections.abc import Sequence

#: Global `dtask` options that take a value, and those that do not (dtask_client.options).
GLOBAL_VALUED = ("--config", "--certs", "--cert", "--key", "--set")
GLOBAL_FLAGS = ("-v", "--verbose")


def split_globals(args: Sequence[str]) -> tuple[list[str], list[str]]:
    """The global options among args (in order, with their values) and the rest, for `dtask [GLOBALS] CMD REST`."""
    globals_: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest.extend(args[i:])
            break
        if arg in GLOBAL_FLAGS:
            globals_.append(arg)
        elif arg in GLOBAL_VALUED and i + 1 < len(args):
            globals_ += [arg, args[i + 1]]
            i += 1
        elif arg.partition("=")[0] in GLOBAL_VALUED and "=" in arg:
            globals_.append(arg)
        else:
            rest.append(arg)
        i += 1
    return globals_, rest


def run_service(command: str, args: Sequence[str] | None = None) -> None:
    """Run `dtask COMMAND ARGS`, the global options (--config, --set, -v, ...) accepted anywhere in ARGS."""
    from dtask_cli import cli

    globals_, rest = split_globals(sys.argv[1:] if args is None else args)
    cli.main(args=[*globals_, command, *rest], prog_name="dtask")
    sys.exit(0)


def runner_main() -> None:
    """`dtask-runner ARGS`: `dtask runner ARGS`."""
    run_service("runner")


def controller_main() -> None:
    """`dtask-controller ARGS`: `dtask controller ARGS`."""
    run_service("controller")
