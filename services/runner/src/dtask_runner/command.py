"""`dtask runner`: run a runner in the foreground (a `dtask` command, registered by entry point)."""

from __future__ import annotations

import os
from typing import Any

import click
from dtask_common import certs, runner_paths, systemd
from dtask_common.address import AddressError, check_address
from dtask_common.config import Config
from dtask_common.exitcodes import CERTIFICATE, USAGE, CommandError
from dtask_common.invocation import Invocation
from dtask_common.roles import Role
from dtask_common.serving import check_own_certificate, serving_errors, setup_logging


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
@click.option(
    "--task-env-path",
    type=click.Path(file_okay=False),
    help="venv or conda env every task runs in unless it names its own (runner.task_env_path).",
)
@click.option(
    "--path",
    "paths",
    multiple=True,
    metavar="NAME=DIR",
    help="A directory tasks name as {path:NAME} here (runner.paths); tasks naming it go only to runners with it.",
)
@click.option("--print-systemd-unit", is_flag=True, help="Print a systemd unit running this runner, and exit.")
@click.option(
    "--metrics-address",
    metavar="[HOST:]PORT",
    help="Serve Prometheus metrics at http://HOST:PORT/metrics (no host: 127.0.0.1; plain HTTP, off by default).",
)
@click.option(
    "--join", "join_address", metavar="HOST:PORT", help="Join the controller at its join port first (with --token)."
)
@click.option("--token", help="The one-time token of --join (`dtask certs token --role runner` on the controller).")
@click.pass_obj
def runner_cmd(
    invocation: Invocation,
    controller_address: str | None,
    labels: tuple[str, ...],
    paths: tuple[str, ...],
    print_systemd_unit: bool,
    join_address: str | None,
    token: str | None,
    **flags: Any,
) -> None:
    """Run a runner in the foreground: execute tasks the controller assigns."""
    overrides = {f"runner.{k}": v for k, v in flags.items()}
    overrides["runner.controller"] = controller_address or invocation.controller
    if join_address or token:
        name, controller = _join(invocation, overrides, join_address, token)
        if flags.get("name") not in (None, name):
            raise CommandError(
                f"--name {flags['name']} differs from the name the token gives ({name}): drop --name", USAGE
            )
        overrides["runner.name"] = name
        overrides["runner.controller"] = overrides["runner.controller"] or controller
    if labels:
        overrides["runner.labels"] = ",".join(labels)
    if paths:
        try:
            overrides["runner.paths"] = dict(runner_paths.parse_path(p) for p in paths)
        except ValueError as exc:
            raise CommandError(str(exc), USAGE) from None
    cfg = invocation.config(overrides)
    try:
        check_address(cfg.runner.controller)
    except AddressError as exc:
        raise CommandError(str(exc), USAGE) from None
    if print_systemd_unit:
        click.echo(systemd.unit_for("runner", cfg.home_path, invocation.config_path), nl=False)
        return
    if cfg.runner.run_as and os.geteuid() != 0:  # before touching any file: the runner checks it too
        raise CommandError(
            f"--run-as {cfg.runner.run_as} (runner.run_as) needs a runner started as root, and "
            f"this one runs as uid {os.geteuid()}: start it as root, or drop the option",
            USAGE,
        )
    with serving_errors():
        _check_certificate(cfg)
        setup_logging(invocation.verbose)
        from dtask_runner.main import run  # here: `dtask --help` need not load the runner

        run(cfg)


def _check_certificate(cfg: Config) -> None:
    """Before serving: the runner's certificate exists (issued now when the CA key is here), holds the
    runner role, comes from ca.crt and has not expired; otherwise CertError names the fix. (A certificate
    for another name is the controller's to refuse: it says which name to use.)"""
    crt, _ = certs.ensure_runner(cfg.certs_path, cfg.runner.name, cfg.ca_path)
    fix = f"issue one on the CA's machine: dtask certs issue --role runner --name {cfg.runner.name}"
    check_own_certificate(crt, Role.RUNNER, fix, cfg.certs_path)


def _join(invocation: Invocation, overrides: dict[str, Any], address: str | None, token: str | None) -> tuple[str, str]:
    """Join with the token (once: a start with the same token again uses what the first one stored);
    (the runner's name, the controller's address)."""
    from dtask_common.joining import JoinError, join, joined_before

    if not (address and token):
        raise CommandError("--join and --token go together: dtask runner --join HOST:PORT --token TOKEN", USAGE)
    cfg = invocation.config(overrides)
    done = joined_before(cfg.certs_path, token)
    if done is None:
        try:
            done = join(address, token, cfg.certs_path, ca_dir=cfg.ca_path)
        except JoinError as exc:
            raise CommandError(str(exc), CERTIFICATE) from None
        click.echo(f"joined as {done.role} {done.name}: wrote {done.cert} (certificate {done.serial})", err=True)
    if done.role != Role.RUNNER.value:
        raise CommandError(
            f"the token was for a {done.role} ({done.name}), not a runner: its certificate is in {done.cert}; "
            "make a runner token with `dtask certs token --role runner --name NAME`",
            USAGE,
        )
    return done.name, done.controller
