"""`dtask certs revoke` and `dtask certs list`: cut a certificate off, see what the CA issued and what is revoked."""

from __future__ import annotations

import datetime as dt
import time

import click
from dtask_common import certrecords
from dtask_common.certrecords import RecordError, Revoked
from dtask_common.exitcodes import CERTIFICATE, NOT_FOUND

from dtask_cli.context import CliContext
from dtask_cli.errors import CliError


def _day(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d")


def _show(revoked: list[Revoked], how: str) -> None:
    for r in revoked:
        who = f"{r.role}/{r.name}" if r.role else "unknown holder"
        click.echo(f"revoked {r.serial} ({who}) {how}")


@click.command("revoke")
@click.argument("target", metavar="NAME|ROLE/NAME|SERIAL")
@click.option(
    "--offline",
    is_flag=True,
    help="Write the revocation into this DTASK_HOME instead of telling the running controller (for a controller "
    "that is stopped: it loads the list when it starts).",
)
@click.pass_obj
def revoke_cmd(ctx: CliContext, target: str, offline: bool) -> None:
    """Revoke certificates: the controller refuses them from now on and ends their open streams."""
    cfg = ctx.config()
    if offline:
        try:
            entries = certrecords.resolve(target, certrecords.issued(cfg.ca_path), time.time())
            recorded = certrecords.add_revoked(cfg.certs_path, entries)
        except RecordError as exc:
            raise CliError(str(exc), NOT_FOUND) from None
        _show(
            recorded, f"in {cfg.certs_path / certrecords.REVOKED_FILE} (a running controller reads it within a second)"
        )
        return
    from dtask_client import ControllerUnavailable, DtaskError
    from dtask_client.certificates import revoke_certificate

    from dtask_cli.errors import cli_error

    client = ctx.client()
    try:
        recorded, ended = revoke_certificate(client, target)
    except DtaskError as exc:
        err = cli_error(exc)
        if isinstance(exc, ControllerUnavailable):
            hint = f"with the controller stopped, run `dtask certs revoke --offline {target}` on its machine"
            err = CliError(f"{err.format_message()} ({hint})", err.exit_code)
        raise err from None
    finally:
        client.close()
    _show(recorded, f"by the controller at {client.address}" + (f"; ended {ended} open stream(s)" if ended else ""))


@click.command("list")
@click.pass_obj
def list_cmd(ctx: CliContext) -> None:
    """List the certificates this CA issued (name, role, serial, expiry, how) and the revoked ones."""
    cfg = ctx.config()
    try:
        issued = certrecords.issued(cfg.ca_path)
        revoked = {r.serial: r for r in certrecords.revoked(cfg.certs_path)}
    except RecordError as exc:
        raise CliError(str(exc), CERTIFICATE) from None
    if not issued and not revoked:
        click.echo(f"no certificates recorded in {cfg.ca_path} (certificates issued from now on are listed)")
        return
    now = time.time()
    click.echo(f"{'ROLE':<10} {'NAME':<24} {'SERIAL':<42} {'NOT AFTER':<10} {'STATE':<18} ISSUED BY")
    for i in issued:
        r = revoked.pop(i.serial, None)
        state = f"revoked {_day(r.revoked_at)}" if r else ("expired" if i.not_after < now else "valid")
        click.echo(f"{i.role:<10} {i.name:<24} {i.serial:<42} {_day(i.not_after):<10} {state:<18} {i.by}")
    for r in revoked.values():
        click.echo(
            f"{r.role or '?':<10} {r.name or '?':<24} {r.serial:<42} {'?':<10} {'revoked ' + _day(r.revoked_at):<18} (not in this CA's record)"
        )
