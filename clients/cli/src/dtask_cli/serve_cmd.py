"""`dtask controller` and `dtask runner`: start the long-running services."""

from __future__ import annotations

import logging
import os
from typing import Any

import click
from dtask_common import certs
from dtask_common.certs import CertError
from dtask_common.config import Config
from dtask_common.roles import Role
from dtask_common.server import PortRangeFull

from dtask_cli.context import CliContext
from dtask_cli.errors import CERTIFICATE, USAGE, CliError


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)-5s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )


def _run(ctx: CliContext, what: str, overrides: dict[str, Any]) -> None:
    cfg = ctx.config(overrides)
    if what == "runner":
        from dtask_client import BadAddress
        from dtask_client.errors import check_address

        try:
            check_address(cfg.runner.controller)
        except BadAddress as exc:
            raise CliError(exc.message, USAGE) from None
        if cfg.runner.run_as and os.geteuid() != 0:  # before touching any file: the runner checks it too
            raise CliError(f"--run-as {cfg.runner.run_as} (runner.run_as) needs a runner started as root, and "
                           f"this one runs as uid {os.geteuid()}: start it as root, or drop the option", USAGE)
    try:
        _check_own_certificate(cfg, what)
    except CertError as exc:
        raise CliError(str(exc), CERTIFICATE) from None
    setup_logging(ctx.verbose)
    try:
        if what == "controller":
            from dtask_controller.main import run
        else:
            from dtask_runner.main import run
    except ImportError:
        raise click.ClickException(
            f"the {what} is not installed here: pip install dtask-{what} (or `make install`)"
        ) from None
    try:
        run(cfg)
    except CertError as exc:
        raise CliError(str(exc), CERTIFICATE) from None
    except PortRangeFull as exc:
        raise CliError(str(exc)) from None


def _check_own_certificate(cfg: Config, what: str) -> None:
    """Before serving: the service's certificate exists (a runner's is issued when the CA key is here),
    holds the service's role, comes from ca.crt and has not expired; otherwise CertError names the fix.
    (A runner certificate for another name is the controller's to refuse: it says which name to use.)"""
    d = cfg.certs_path
    if what == "runner":
        crt, _ = certs.ensure_runner(d, cfg.runner.name, cfg.ca_path)
        role = Role.RUNNER
        fix = f"issue one on the CA's machine: dtask certs issue --role runner --name {cfg.runner.name}"
    else:
        crt, role = d / "controller.crt", Role.CONTROLLER
        fix = ("run `dtask certs init` (add --host NAME for the names runners dial) on the machine that holds "
               "the CA, and run the controller there")
        if not crt.exists():
            raise CertError(f"no controller certificate {crt}: {fix}")
    info = certs.read_info(crt)
    if info.role != role.value:
        held = f"a {info.role} certificate" if info.role else "not a dtask role certificate"
        raise CertError(f"{crt} is {held}, not a {role.value} certificate: {fix}")
    if not (d / "ca.crt").exists():
        raise CertError(f"no CA certificate {d / 'ca.crt'}: copy it from the CA's machine")
    certs.check_signed_by(crt, d / "ca.crt")


@click.command("controller")
@click.option("--host", help="Address to bind (default 0.0.0.0).")
@click.option("--port-range", help="First-last port to try, e.g. 50051-50059.")
@click.option("--store", type=click.Path(dir_okay=False), help="SQLite file (default $DTASK_HOME/controller.db).")
@click.option("--tasks", type=click.Path(dir_okay=False, exists=True), help="Task file to queue at start.")
@click.option("--name", help="Controller name (default ctrl@<host>).")
@click.pass_obj
def controller_cmd(ctx: CliContext, **flags: Any) -> None:
    """Run the controller in the foreground."""
    _run(ctx, "controller", {f"controller.{k}": v for k, v in flags.items()})


@click.command("runner")
@click.option("--controller", "controller_address", help="Controller address host:port.")
@click.option("--name", help="Executor name (default exec@<host>).")
@click.option("--slots", type=int, help="Concurrent tasks (default 1).")
@click.option("--gpus", help="GPU indexes to offer: 0,1 | auto | none.")
@click.option("--label", "labels", multiple=True, metavar="K=V", help="Label tasks can require.")
@click.option("--host", help="Address the Runner service binds (default 0.0.0.0).")
@click.option("--port-range", help="First-last port to try, e.g. 50100-50199.")
@click.option("--log-dir", type=click.Path(file_okay=False), help="Where attempt logs go.")
@click.option("--work-dir", type=click.Path(file_okay=False), help="Working directory of tasks without a cwd.")
@click.option("--cpus", type=float, help="CPU cores to offer (default: this machine's).")
@click.option("--memory-mb", type=int, help="Memory in MiB to offer (default: this machine's).")
@click.option("--advertise-host", help="Host name the controller and clients use for the Runner service.")
@click.option("--run-as", metavar="USER", help="Run every task as this user (the runner must run as root).")
@click.pass_obj
def runner_cmd(ctx: CliContext, controller_address: str | None, labels: tuple[str, ...], **flags: Any) -> None:
    """Run a runner in the foreground: execute tasks the controller assigns."""
    overrides = {f"runner.{k}": v for k, v in flags.items()}
    overrides["runner.controller"] = controller_address or ctx.controller
    if labels:
        overrides["runner.labels"] = ",".join(labels)
    _run(ctx, "runner", overrides)


def register(group: click.Group) -> None:
    group.add_command(controller_cmd)
    group.add_command(runner_cmd)
