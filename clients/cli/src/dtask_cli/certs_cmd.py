"""`dtask certs`: create the CA, issue role certificates, show what a certificate holds."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click
from dtask_common import certs
from dtask_common.certs import CertError
from dtask_common.exitcodes import CERTIFICATE
from dtask_common.private import private_dir, write_private
from dtask_common.roles import Role

from dtask_cli.context import CliContext
from dtask_cli.errors import CliError


def _dir(ctx: CliContext) -> Path:
    return ctx.config().certs_path


@click.group("certs")
def certs_group() -> None:
    """Manage the certificates of mutual TLS (CA, controller, operator, viewer, runners)."""


@certs_group.command("init")
@click.option("--host", "hosts", multiple=True, help="Extra host name or IP the controller is reached at.")
@click.option("--force", is_flag=True, help="Replace an existing CA and certificates.")
@click.pass_obj
def init_cmd(ctx: CliContext, hosts: tuple[str, ...], force: bool) -> None:
    """Create the CA, the controller's certificate and the operator and viewer certificates."""
    d, ca = _dir(ctx), ctx.config().ca_path
    _move_legacy_key(d, ca)
    try:
        made = certs.init(d, list(hosts), force=force, ca_dir=ca)
    except CertError as exc:
        raise CliError(str(exc), CERTIFICATE) from None
    for p in made:
        click.echo(f"wrote {p}")
    click.echo(
        f"certificates are in {d}; the CA key is in {ca} (only `dtask certs issue` needs it: keep it there or offline)"
    )
    if hosts and d / "controller.crt" in made:
        click.echo("restart a running controller to serve the new controller certificate", err=True)


@certs_group.command("ensure", hidden=True)
@click.pass_obj
def ensure_cmd(ctx: CliContext) -> None:
    """Create the local CA and certificates when missing (used by the make targets)."""
    d, ca = _dir(ctx), ctx.config().ca_path
    _move_legacy_key(d, ca)
    if (d / "ca.crt").exists() and not certs.ca_key_path(d, ca):
        return  # certificates copied from the CA's machine (e.g. a runner's), or the CA key is offline
    made = certs.init(d, ca_dir=ca)
    if made:
        click.echo(
            f"created a local CA and certificates in {d} (to join a controller on another machine, "
            "use certificates copied from it instead: README, Running on several machines)"
        )


@certs_group.command("issue")
@click.option(
    "--role",
    type=click.Choice([r.value for r in (Role.RUNNER, Role.OPERATOR, Role.VIEWER)]),
    required=True,
    help="What the holder may do.",
)
@click.option("--name", required=True, help="The holder's name (a runner's executor name).")
@click.option("--host", "hosts", multiple=True, help="Extra host name or IP (runners serve on it).")
@click.option("--out", type=click.Path(file_okay=False), help="Write the files here (default the certs dir).")
@click.pass_obj
def issue_cmd(ctx: CliContext, role: str, name: str, hosts: tuple[str, ...], out: str | None) -> None:
    """Issue a certificate for a runner, an operator or a viewer."""
    d = _dir(ctx)
    r = Role(role)
    stem = certs.stem_for(r, name) if r is Role.RUNNER or name == r.value else f"{r.value}-{name}"
    ca = ctx.config().ca_path
    _move_legacy_key(d, ca)
    try:
        crt, key = certs.issue(d, r, name, hosts=list(hosts), stem=stem, ca_dir=ca)
    except CertError as exc:
        raise CliError(str(exc), CERTIFICATE) from None
    written = [crt, key]
    if out:
        o = Path(out)
        private_dir(o)
        written = []
        for src in (crt, key, d / "ca.crt"):
            dst = o / src.name
            if src == key:
                write_private(dst, src.read_bytes())  # 0600 from the start
            else:
                dst.write_bytes(src.read_bytes())
            written.append(dst)
    for p in written:
        click.echo(f"wrote {p}")
    files = ", ".join(p.name for p in written)
    if out and r is Role.RUNNER:
        click.echo(
            f"copy {files} into $DTASK_HOME/certs/ on the runner machine (<checkout>/.dtask/certs with make)", err=True
        )
    elif out:
        click.echo(
            f"copy {files} into a directory DIR on the holder's machine and use them with "
            f"--certs DIR --cert DIR/{crt.name}",
            err=True,
        )
    elif r is not Role.RUNNER:
        click.echo(f"use it with --cert {crt}", err=True)


def _move_legacy_key(certs_dir: Path, ca_dir: Path) -> Path | None:
    """A CA key among the certificates (the earlier layout) goes to the CA dir, with a one-line notice."""
    try:
        moved = certs.move_legacy_ca_key(certs_dir, ca_dir)
    except OSError as exc:
        raise CliError(
            f"cannot move the CA key {certs_dir / 'ca.key'} to {ca_dir}: {exc.strerror or exc}", CERTIFICATE
        ) from None
    if moved:
        click.echo(
            f"moved the CA key {certs_dir / 'ca.key'} to {moved}, apart from the certificates the services read",
            err=True,
        )
    return moved


@certs_group.command("show")
@click.argument("paths", nargs=-1, type=click.Path(dir_okay=False))
@click.pass_obj
def show_cmd(ctx: CliContext, paths: tuple[str, ...]) -> None:
    """Show role, name, hosts and expiry of certificates (default: all in the certs dir)."""
    files = [Path(p) for p in paths] or sorted(_dir(ctx).glob("*.crt"))
    if not files:
        raise CliError(f"no certificates in {_dir(ctx)}; run `dtask certs init`", CERTIFICATE)
    for p in files:
        try:
            info = certs.read_info(p)
        except CertError as exc:
            raise CliError(str(exc), CERTIFICATE) from None
        who = f"{info.role}/{info.name}" if info.role else "CA"
        hosts = ", ".join([*info.dns, *info.ips])
        expired = info.not_after < dt.datetime.now(dt.UTC)
        when = (
            click.style(f"EXPIRED {info.not_after:%Y-%m-%d}", fg="red")
            if expired
            else f"expires {info.not_after:%Y-%m-%d}"
        )
        click.echo(
            f"{p}: {who}; subject {info.subject}; {when}"
            + (f"; hosts {hosts}" if hosts else "")
            + f"; serial {info.serial}"
        )


def register(group: click.Group) -> None:
    from dtask_cli.join_cmd import join_cmd, token_cmd, tokens_cmd
    from dtask_cli.revoke_cmd import list_cmd, revoke_cmd

    for cmd in (token_cmd, tokens_cmd, join_cmd, revoke_cmd, list_cmd):
        certs_group.add_command(cmd)
    group.add_command(certs_group)
