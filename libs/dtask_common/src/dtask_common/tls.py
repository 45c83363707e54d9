"""Loading mutual-TLS credentials for servers and clients, with errors that name the file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc

from dtask_common.certs import CertError, check_signed_by


@dataclass(frozen=True)
class TlsFiles:
    """The three files of one side of a mutual-TLS connection."""

    ca: Path
    cert: Path
    key: Path

    @classmethod
    def in_dir(cls, certs_dir: Path, stem: str) -> TlsFiles:
        return cls(certs_dir / "ca.crt", certs_dir / f"{stem}.crt", certs_dir / f"{stem}.key")

    def read(self) -> tuple[bytes, bytes, bytes]:
        out = []
        for what, path in (("CA certificate", self.ca), ("certificate", self.cert), ("key", self.key)):
            try:
                out.append(path.read_bytes())
            except FileNotFoundError:
                raise CertError(
                    f"{what} {path} does not exist: run `dtask certs init` (or `make certs`), "
                    "or pass --certs/--cert/--key"
                ) from None
            except PermissionError:
                raise CertError(f"{what} {path} is not readable by this user") from None
        return out[0], out[1], out[2]

    def check(self) -> None:
        """Raise CertError when the files are missing or the certificate is not from the CA."""
        self.read()
        check_signed_by(self.cert, self.ca)


def server_credentials(files: TlsFiles) -> grpc.ServerCredentials:
    """Server credentials that require a client certificate from the same CA."""
    ca, cert, key = files.read()
    return grpc.ssl_server_credentials([(key, cert)], root_certificates=ca, require_client_auth=True)


def channel_credentials(files: TlsFiles) -> grpc.ChannelCredentials:
    """Client credentials presenting a certificate and trusting only the CA."""
    ca, cert, key = files.read()
    return grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)
