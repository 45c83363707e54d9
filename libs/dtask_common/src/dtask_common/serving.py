"""What `dtask controller` and `dtask runner` share: their logging, their own certificate's check, exit codes."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dtask_common import certs
from dtask_common.certs import CertError
from dtask_common.exitcodes import CERTIFICATE, FAILED, CommandError
from dtask_common.roles import Role
from dtask_common.server import PortRangeFull


def setup_logging(verbose: bool) -> None:
    """A service's log on stderr: time, level, logger name; DEBUG with -v."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)-5s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    # What the format does not show is not gathered for each record (the logging HOWTO's "Optimization"):
    # the caller's frame, thread and process. A busy controller logs two lines per attempt.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


def check_own_certificate(crt: Path, role: Role, fix: str, certs_dir: Path) -> None:
    """Before serving: crt holds the service's role, comes from ca.crt in certs_dir and has not expired;
    otherwise CertError ending with fix."""
    info = certs.read_info(crt)
    if info.role != role.value:
        held = f"a {info.role} certificate" if info.role else "not a dtask role certificate"
        raise CertError(f"{crt} is {held}, not a {role.value} certificate: {fix}")
    if not (certs_dir / "ca.crt").exists():
        raise CertError(f"no CA certificate {certs_dir / 'ca.crt'}: copy it from the CA's machine")
    certs.check_signed_by(crt, certs_dir / "ca.crt")


@contextmanager
def serving_errors() -> Iterator[None]:
    """A certificate problem as CommandError(CERTIFICATE), a port range in use as CommandError(FAILED)."""
    try:
        yield
    except CertError as exc:
        raise CommandError(str(exc), CERTIFICATE) from None
    except PortRangeFull as exc:
        raise CommandError(str(exc), FAILED) from None
