"""Where the controller is, which certificate to present, and how long a call may take."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from dtask_common import config as config_mod
from dtask_common.address import PortRanges
from dtask_common.certs import CertError
from dtask_common.config import Config, ConfigError
from dtask_common.tls import TlsFiles

from dtask_client.errors import CertificateError, check_address


@dataclass(frozen=True)
class Settings:
    """Where the controller is and which certificate to present (None: the channel was given ready)."""

    address: str
    files: TlsFiles | None
    timeout: float
    ranges: PortRanges = PortRanges()
    """The ports the configuration gives the controller and the runners (quoted by error hints)."""
    direct_logs: bool = True
    """Whether a large whole output is read straight from its runner (client.direct_logs)."""


def resolve(
    address: str | None = None,
    *,
    certs: str | Path | None = None,
    cert: str | Path | None = None,
    key: str | Path | None = None,
    timeout: float | None = None,
    config: Config | None = None,
    need_files: bool = True,
) -> Settings:
    """Apply the defaults the CLI uses: $DTASK_CONTROLLER, $DTASK_HOME/certs, the operator certificate.

    need_files=False (a channel given ready brings its own credentials) reads no certificate.
    """
    if config is None:
        try:
            config = config_mod.load()
        except ConfigError as exc:
            raise CertificateError(f"cannot read the dtask configuration: {exc}", "CONFIG") from None
    addr = check_address(address or os.environ.get(config_mod.ENV_CONTROLLER) or config.client.controller)
    seconds = float(timeout if timeout is not None else config.client.timeout_s)
    ranges = PortRanges(config.controller.port_range, config.runner.port_range)
    if not need_files:
        return Settings(addr, None, seconds, ranges, config.client.direct_logs)
    certs_dir = Path(certs).expanduser().absolute() if certs else config.certs_path
    default = TlsFiles.in_dir(certs_dir, "operator")
    cert_path = Path(cert).expanduser().absolute() if cert else default.cert
    if key:
        key_path = Path(key).expanduser().absolute()
    else:
        key_path = cert_path.with_suffix(".key") if cert else default.key
    files = TlsFiles(certs_dir / "ca.crt", cert_path, key_path)
    try:
        files.check()
    except CertError as exc:
        raise CertificateError(str(exc)) from None
    return Settings(addr, files, seconds, ranges, config.client.direct_logs)
