"""The `dtask` command line: one click group, one module per family of subcommands, services by entry point."""

from __future__ import annotations

import sys
from typing import Any

from dtask_common.allocator import reuse_freed_memory
from dtask_common.grpcenv import prepare_grpc

prepare_grpc()  # before anything imports grpc
reuse_freed_memory()  # the controller, the runner and `dtask logs` move output in MiB messages

import click  # noqa: E402
from dtask_client.options import global_options  # noqa: E402
from dtask_common import __version__  # noqa: E402

from dtask_cli import (  # noqa: E402
    certs_cmd,
    config_cmd,
    ops_cmd,
    prune_cmd,
    results_cmd,
    shell_cmd,
    submit_cmd,
    tasks_cmd,
)
from dtask_cli.context import CliContext  # noqa: E402
from dtask_cli.errors import DtaskGroup  # noqa: E402


@click.group(cls=DtaskGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "-V", "--version", prog_name="dtask", message="%(prog)s %(version)s")
@global_options
@click.pass_context
def cli(ctx: click.Context, **options: Any) -> None:
    """dtask: run many long shell-command tasks across your machines and watch them live."""
    ctx.obj = CliContext.from_options(options)


for module in (certs_cmd, submit_cmd, tasks_cmd, results_cmd, ops_cmd, prune_cmd, shell_cmd, config_cmd):
    module.register(cli)


def main() -> None:
    cli.main(prog_name="dtask")
    sys.exit(0)
