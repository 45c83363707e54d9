"""`dtask certs token`, `tokens` and `join`: one-time tokens on the CA's machine, joining with one elsewhere."""

from __future__ import annotations

import datetime as dt
import re
import socket
import time
from pathlib import Path

import click
from dtask_common import certs, jointoken
from dtask_common.certrecords import RecordError
from dtask_common.certs import CertError
from dtask_common.exitcodes import CERTIFICATE, NOT_FOUND, USAGE
from dtask_common.joining import DEFAULT_JOIN_PORT, JoinError, join, joined_before
from dtask_common.jointoken import TokenError
from dtask_common.roles import Role

from dtask_cli.context import CliContext
from dtask_cli.errors import CliError

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd]?)$")
_UNIT_S = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_ttl(text: str) -> float:
    """Seconds of a duration like 90s, 30m, 1h (a bare number is seconds)."""
    m = _DURATION.match(text.strip().lower())
    if not m:
        raise CliError(f"--ttl {text!r}: give a duration like 30m, 1h or 90s", USAGE)
    seconds = float(m.group(1)) * _UNIT_S[m.group(2)]
    try:
        jointoken.check_ttl(seconds)
    except TokenError as exc:
        raise CliError(str(exc), USAGE) from None
    return seconds


def _when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _this_host() -> str:
    fqdn = socket.getfqdn()
    return fqdn if fqdn and not fqdn.startswith("localhost") else socket.gethostname()


def _join_host(ctx: CliContext) -> str:
    address = ctx.config().controller.join_address.strip()
    if address:
        host, _, port = address.rpartition(":")
        if host not in ("", "0.0.0.0", "[::]"):
            return address
        return f"{_this_host()}:{port}"
    return f"{_this_host()}:{DEFAULT_JOIN_PORT}"


@click.command("token")
@click.option(
    "--role",
    type=click.Choice([r.value for r in jointoken.JOINABLE]),
    required=True,
    help="What the joining machine may do.",
)
@click.option("--name", required=True, help="The name its certificate carries (a runner's executor name).")
@click.option(
    "--ttl", default="1h", show_default=True, help="How long the token may be used: 30m, 1h, ... (at most 24h)."
)
@click.option("--host", "hosts", multiple=True, help="Host name or IP the certificate names (a runner serving on it).")
@click.pass_obj
def token_cmd(ctx: CliContext, role: str, name: str, ttl: str, hosts: tuple[str, ...]) -> None:
    """Make a one-time token with which a machine joins (run it where the CA key is)."""
    cfg = ctx.config()
    seconds = parse_ttl(ttl)
    if not certs.NAME_RE.match(name):
        raise CliError(f"bad name {name!r}: use letters, digits and @._- (at most 128 characters)", USAGE)
    try:
        certs.check_hosts(list(hosts))
        if certs.ca_key_path(cfg.certs_path, cfg.ca_path) is None:
            raise CertError(
                f"no CA key in {cfg.ca_path} (ca.key): make tokens on the machine where the controller and its "
                "CA key are (where `dtask certs init` ran)"
            )
        token, rec = jointoken.create(
            cfg.ca_path, (cfg.certs_path / "ca.crt").read_bytes(), Role(role), name, seconds, list(hosts)
        )
    except (CertError, TokenError, RecordError) as exc:
        raise CliError(str(exc), CERTIFICATE) from None
    click.echo(token.text())
    address = _join_host(ctx)
    joiner = "dtask runner --join" if role == Role.RUNNER.value else "dtask certs join"
    click.echo(
        f"token {rec.id} for {role} {name}, single use, valid until {_when(rec.expires_at)}; on the new machine:\n"
        f"  {joiner} {address} --token {token.text()}\n"
        "(the controller must run with --allow-join; see `dtask certs tokens`)",
        err=True,
    )


@click.command("tokens")
@click.option("--revoke", "revoke_id", metavar="ID", help="Revoke the token with this id (it can no longer be used).")
@click.option("--all", "show_all", is_flag=True, help="Also list used, expired and revoked tokens.")
@click.pass_obj
def tokens_cmd(ctx: CliContext, revoke_id: str | None, show_all: bool) -> None:
    """List join tokens (or revoke one)."""
    ca = ctx.config().ca_path
    now = time.time()
    try:
        if revoke_id:
            rec = jointoken.revoke(ca, revoke_id, now)
            click.echo(f"token {rec.id} ({rec.role} {rec.name}): {rec.state(now)}")
            return
        records = jointoken.tokens(ca)
    except TokenError as exc:
        raise CliError(str(exc), NOT_FOUND) from None
    except RecordError as exc:
        raise CliError(str(exc), CERTIFICATE) from None
    shown = [r for r in records if show_all or r.state(now) == "valid"]
    if not shown:
        click.echo("no valid tokens (make one with `dtask certs token`; --all lists the others)")
        return
    click.echo(f"{'ID':<8} {'ROLE':<9} {'NAME':<20} {'STATE':<8} {'EXPIRES':<21} USED FOR")
    for r in shown:
        click.echo(f"{r.id:<8} {r.role:<9} {r.name:<20} {r.state(now):<8} {_when(r.expires_at):<21} {r.used_for}")


@click.command("join")
@click.argument("address")
@click.option("--token", required=True, help="The token `dtask certs token` printed on the controller's machine.")
@click.option("--force", is_flag=True, help="Replace a ca.crt of another CA in this DTASK_HOME.")
@click.pass_obj
def join_cmd(ctx: CliContext, address: str, token: str, force: bool) -> None:
    """Get this machine's certificate from the controller at ADDRESS (its join port) with a one-time token."""
    cfg = ctx.config()
    earlier = joined_before(cfg.certs_path, token)
    if earlier is not None:
        click.echo(f"already joined with this token: {earlier.cert} ({earlier.role} {earlier.name})")
        return
    try:
        done = join(address, token, cfg.certs_path, ca_dir=cfg.ca_path, force=force)
    except JoinError as exc:
        raise CliError(str(exc), CERTIFICATE) from None
    click.echo(f"wrote {done.cert}, {done.key} and {Path(done.cert).parent / 'ca.crt'}")
    click.echo(f"joined as {done.role} {done.name} (certificate {done.serial}); the controller is {done.controller}")
    if done.role == Role.RUNNER.value:
        click.echo(f"start the runner: dtask runner --controller {done.controller} --name {done.name}", err=True)
    else:
        flag = "" if done.role == Role.OPERATOR.value else f" --cert {done.cert}"
        click.echo(f"use it: dtask --controller {done.controller}{flag} status", err=True)
