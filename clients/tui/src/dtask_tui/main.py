"""`dtask-tui`: the console entry point; takes the same connection options as the `dtask` CLI."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from dtask_common.grpcenv import prepare_grpc

prepare_grpc()  # before anything imports grpc

import click  # noqa: E402
from dtask_client import AsyncController, DtaskError  # noqa: E402
from dtask_client.options import OptionsContext, global_options  # noqa: E402

from dtask_tui.app import TuiApp  # noqa: E402
from dtask_tui.keys import markdown_table  # noqa: E402


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@global_options
@click.option("--log-file", type=click.Path(dir_okay=False), help="Write a debug log here (the screen is the UI).")
@click.option("--no-mouse", is_flag=True, help="Leave the mouse to the terminal (text selection).")
@click.option("--keys-markdown", is_flag=True, help="Print the key bindings as a Markdown table and exit.")
def cli(log_file: str | None, no_mouse: bool, keys_markdown: bool, **options: object) -> None:
    """Watch and steer a dtask cluster in the terminal: tasks, progress, executors, usage."""
    if keys_markdown:
        click.echo(markdown_table())
        return
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise click.ClickException(
            "dtask-tui needs a terminal; in scripts use `dtask tasks`, `dtask executors` or `dtask export` instead"
        )
    ctx = OptionsContext.from_options(options)
    if log_file:
        logging.basicConfig(
            filename=log_file,
            level=logging.DEBUG if ctx.verbose else logging.INFO,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        for noisy in ("urwid", "grpc", "asyncio"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    else:
        logging.basicConfig(level=logging.CRITICAL)
    client = client_for(ctx)
    app = TuiApp(client, export_dir=Path.cwd(), mouse=not no_mouse)
    app.state.lost_after_s = ctx.config().controller.lost_after_s  # gone longer: off the Executors tab
    try:
        app.run()
    except KeyboardInterrupt:
        sys.exit(130)


def client_for(ctx: OptionsContext) -> AsyncController:
    """The client of these options, resolved as `dtask` does: --controller/DTASK_CONTROLLER, [client] controller,
    else the first port of [controller] port_range; --certs, --cert/--key, --config, --set."""
    try:
        return AsyncController(ctx.address, certs=ctx.certs, cert=ctx.cert, key=ctx.key, config=ctx.config())
    except DtaskError as exc:
        raise click.ClickException(exc.message) from None


def main() -> None:
    try:
        cli(standalone_mode=True)
    except KeyboardInterrupt:
        sys.exit(130)
