"""`dtask controller`: run the controller in the foreground (a `dtask` command, registered by entry point)."""

from __future__ import annotations

from typing import Any

import click
from dtask_common import systemd
from dtask_common.certs import CertError
from dtask_common.config import Config
from dtask_common.invocation import Invocation
from dtask_common.roles import Role
from dtask_common.serving import check_own_certificate, serving_errors, setup_logging


@click.command("controller")
@click.option("--host", help="Address to bind (default 0.0.0.0).")
@click.option("--port-range", help="First-last port to try, e.g. 50051-50059.")
@click.option("--store", type=click.Path(dir_okay=False), help="SQLite file (default $DTASK_HOME/controller.db).")
@click.option("--tasks", type=click.Path(dir_okay=False, exists=True), help="Task file to queue at start.")
@click.option("--name", help="Controller name (default ctrl@<host>).")
@click.option("--print-systemd-unit", is_flag=True, help="Print a systemd unit running this controller, and exit.")
@click.option(
    "--metrics-address",
    metavar="[HOST:]PORT",
    help="Serve Prometheus metrics at http://HOST:PORT/metrics (no host: 127.0.0.1; plain HTTP, off by default).",
)
@click.option(
    "--allow-join",
    is_flag=True,
    default=None,
    help="Let machines join with a token (dtask certs token) on controller.join_address (default port 50050).",
)
@click.pass_obj
def controller_cmd(invocation: Invocation, print_systemd_unit: bool, allow_join: bool | None, **flags: Any) -> None:
    """Run the controller in the foreground."""
    overrides: dict[str, Any] = {f"controller.{k}": v for k, v in flags.items()}
    if allow_join:
        overrides["controller.join_enabled"] = True
    cfg = invocation.config(overrides)
    if print_systemd_unit:
        click.echo(systemd.unit_for("controller", cfg.home_path, invocation.config_path), nl=False)
        return
    with serving_errors():
        _check_certificate(cfg)
        setup_logging(invocation.verbose)
        from dtask_controller.main import run  # here: `dtask --help` need not load the controller

        run(cfg)


def _check_certificate(cfg: Config) -> None:
    """Before serving: the controller's certificate exists, holds the controller role, comes from ca.crt
    and has not expired; otherwise CertError names the fix."""
    crt = cfg.certs_path / "controller.crt"
    fix = (
        "run `dtask certs init` (add --host NAME for the names runners dial) on the machine that holds "
        "the CA, and run the controller there"
    )
    if not crt.exists():
        raise CertError(f"no controller certificate {crt}: {fix}")
    check_own_certificate(crt, Role.CONTROLLER, fix, cfg.certs_path)
