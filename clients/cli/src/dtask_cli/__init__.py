"""The `dtask` command line: one click group, one module per family of subcommands."""

from __future__ import annotations

import os
import sys
from typing import Any

# gRPC core logs bind failures and TLS handshakes on stderr; the CLI and the services report
# what matters themselves, in one line (GRPC_VERBOSITY=ERROR or DEBUG shows gRPC's own lines again).
os.environ.setdefault("GRPC_VERBOSITY", "NONE")
# The runner forks and execs its tasks; gRPC's fork handlers (meant for children that go on using
# gRPC) abort a child forked as another user (runner.run_as), so they are off before gRPC starts.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

import click  # noqa: E402
from dtask_common import __version__  # noqa: E402

from dtask_cli import certs_cmd, ops_cmd, serve_cmd, shell_cmd, submit_cmd, tasks_cmd  # noqa: E402
from dtask_cli.context import CliContext, global_options  # noqa: E402
from dtask_cli.errors import DtaskGroup  # noqa: E402


@click.group(cls=DtaskGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "-V", "--version", prog_name="dtask", message="%(prog)s %(version)s")
@global_options
@click.pass_context
def cli(ctx: click.Context, **options: Any) -> None:
    """dtask: run many long shell-command tasks across your machines and watch them live."""
    ctx.obj = CliContext.from_options(options)


for module in (certs_cmd, serve_cmd, submit_cmd, tasks_cmd, ops_cmd, shell_cmd):
    module.register(cli)


def main() -> None:
    cli.main(prog_name="dtask")
    sys.exit(0)
