"""The options every dtask command takes (config, address, certificates, --set, -v) and what they build."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from dtask_common import config as config_mod
from dtask_common.config import Config, ConfigError
from dtask_common.exitcodes import FAILED, USAGE, CommandError
from dtask_common.tls import TlsFiles


@dataclass
class Invocation:
    """The global options of one command line, and the config and client TLS files they name."""

    config_path: str | None
    controller: str | None
    certs: str | None
    cert: str | None
    key: str | None
    settings: tuple[str, ...]
    verbose: bool
    _config: Config | None = None

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Self:
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
        """Load dtask.toml, then --set values, then the given command flags; CommandError if they are wrong
        (USAGE for a --set that is not KEY=VALUE, FAILED for a config that does not load)."""
        if self._config is not None and not overrides:
            return self._config
        merged: dict[str, Any] = {}
        for item in self.settings:
            key, sep, value = item.partition("=")
            if not sep:
                raise CommandError(f"--set {item!r}: use KEY=VALUE, e.g. controller.dead_after_s=5", USAGE)
            merged[key.strip()] = value
        if self.certs:
            merged["certs"] = self.certs
        if self.controller:
            merged["client.controller"] = self.controller
        merged.update({k: v for k, v in (overrides or {}).items() if v is not None})  # a flag not given keeps --set
        try:
            cfg = config_mod.load(self.config_path, merged)
        except ConfigError as exc:
            raise CommandError(str(exc), FAILED) from None
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
        key = Path(self.key).absolute() if self.key else (cert.with_suffix(".key") if self.cert else default.key)
        return TlsFiles(certs_dir / "ca.crt", cert, key)
