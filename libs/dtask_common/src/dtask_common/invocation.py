"""The options every dtask command takes (config, address, certificates, --set, -v) and what they build."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from dtask_common.config import ENV_CONTROLLER, Config, ConfigError
from dtask_common.config.loading import FROM_ENV, load_sourced
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
    _sources: dict[str, str] = field(default_factory=dict)

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
        origins: dict[str, str] = {}
        for item in self.settings:
            key, sep, value = item.partition("=")
            if not sep:
                raise CommandError(f"--set {item!r}: use KEY=VALUE, e.g. controller.dead_after_s=5", USAGE)
            merged[key.strip()] = value
            origins[key.strip()] = f"--set {key.strip()}"
        if self.certs:
            merged["certs"] = self.certs
            origins["certs"] = "--certs"
        if self.controller:
            merged["client.controller"] = self.controller
            from_env = self.controller == os.environ.get(ENV_CONTROLLER)
            origins["client.controller"] = FROM_ENV if from_env else "--controller"
        for key, value in (overrides or {}).items():
            if value is not None:
                merged[key] = value
                origins[key] = "command line"
        try:
            cfg, sources = load_sourced(self.config_path, merged, origins)
        except ConfigError as exc:
            raise CommandError(str(exc), FAILED) from None
        if not overrides:
            self._config = cfg
        self._sources = sources
        return cfg

    def sources(self) -> dict[str, str]:
        """Where each value of the last config() came from (dotted key -> source); a key absent is a default."""
        if self._config is None:
            self.config()
        return dict(self._sources)

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
