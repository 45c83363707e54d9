"""Options shared by every dtask command and the state they build (config, certificate files)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from dtask_common import config as config_mod
from dtask_common.config import Config, ConfigError
from dtask_common.tls import TlsFiles

if TYPE_CHECKING:
    from dtask_client import Controller


def global_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """Options accepted before any subcommand."""
    options = [
        click.option("--config", "config_path", type=click.Path(dir_okay=False),
                     help="dtask.toml to read (env DTASK_CONFIG)."),
        click.option("--controller", envvar="DTASK_CONTROLLER",
                     help="Controller address host:port (env DTASK_CONTROLLER, default localhost:50051)."),
        click.option("--certs", type=click.Path(file_okay=False),
                     help="Certificate directory (default $DTASK_HOME/certs)."),
        click.option("--cert", type=click.Path(dir_okay=False),
                     help="Client certificate (default the operator certificate in --certs)."),
        click.option("--key", type=click.Path(dir_okay=False), help="Client key matching --cert."),
        click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
                     help="Override any dtask.toml key, e.g. --set controller.dead_after_s=5."),
        click.option("-v", "--verbose", is_flag=True, help="Debug logging."),
    ]
    return functools.reduce(lambda acc, opt: opt(acc), reversed(options), f)


@dataclass
class CliContext:
    """What every subcommand needs: the loaded config and the client's TLS files."""

    config_path: str | None
    controller: str | None
    certs: str | None
    cert: str | None
    key: str | None
    settings: tuple[str, ...]
    verbose: bool
    _config: Config | None = None

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> CliContext:
        return cls(
            config_path=options.get("config_path"),
            controller=options.get("controller"),
            certs=options.get("certs"),
            cert=options.get("cert"),
            key=options.get("key"),
            settings=tuple(options.get("settings") or ()),
            verbose=bool(options.get("verbose")),
        )

    def config(self, overrides: dict[str, Any] | None = None) -> Config:
        """Load dtask.toml, then --set values, then the given command flags."""
        if self._config is not None and not overrides:
            return self._config
        merged: dict[str, Any] = {}
        for item in self.settings:
            key, sep, value = item.partition("=")
            if not sep:
                raise click.UsageError(f"--set {item!r}: use KEY=VALUE, e.g. controller.dead_after_s=5")
            merged[key.strip()] = value
        if self.certs:
            merged["certs"] = self.certs
        if self.controller:
            merged["client.controller"] = self.controller
        merged.update(overrides or {})
        try:
            cfg = config_mod.load(self.config_path, merged)
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from None
        if not overrides:
            self._config = cfg
        return cfg

    @property
    def address(self) -> str:
        return self.config().client.controller

    def tls_files(self) -> TlsFiles:
        """The client's CA, certificate and key: --cert/--key, else the operator's in --certs."""
        certs_dir = self.config().certs_path
        default = TlsFiles.in_dir(certs_dir, "operator")
        cert = Path(self.cert).absolute() if self.cert else default.cert
        key = Path(self.key).absolute() if self.key else (
            cert.with_suffix(".key") if self.cert else default.key
        )
        return TlsFiles(certs_dir / "ca.crt", cert, key)

    def client(self) -> Controller:
        """A Controller client with this command line's address, certificates and config."""
        from dtask_client import Controller, DtaskError

        from dtask_cli.errors import cli_error

        try:
            return Controller(self.address, certs=self.certs, cert=self.cert, key=self.key, config=self.config())
        except DtaskError as exc:
            raise cli_error(exc) from None
