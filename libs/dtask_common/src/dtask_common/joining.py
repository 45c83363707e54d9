"""Joining with a token: check the server against the CA the token pins, send a CSR, keep what comes back."""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
from dataclasses import asdict, dataclass
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from dtask.v1 import controller_pb2 as pb
from dtask.v1 import controller_pb2_grpc

from dtask_common.address import AddressError, check_address
from dtask_common.certs import cert_paths, stem_for
from dtask_common.jointoken import Token, TokenError, spki_sha256
from dtask_common.private import private_dir, write_private
from dtask_common.roles import Role, parse_role_uri

#: In the certificates' directory: the tokens this machine joined with (so a second start does not join again).
JOINED_FILE = "joined.json"
DEFAULT_JOIN_PORT = 50050


class JoinError(Exception):
    """Joining failed; the message says why and what to do."""


@dataclass(frozen=True)
class Joined:
    """What a join left in the certificates' directory."""

    token_id: str
    role: str
    name: str
    serial: str
    cert: str
    key: str
    #: The Controller service's address: the join host and the port the controller told.
    controller: str


def _host_port(address: str) -> tuple[str, int]:
    try:
        text = check_address(address)
    except AddressError as exc:
        raise JoinError(str(exc).replace("controller address", "join address")) from None
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def fetch_chain(host: str, port: int, timeout: float) -> list[x509.Certificate]:
    """The certificates the server at host:port presents, not verified (the caller checks them)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw, ctx.wrap_socket(raw) as tls:
            chain = tls._sslobj.get_unverified_chain() or []  # type: ignore[attr-defined]
            return [x509.load_der_x509_certificate(c.public_bytes(ssl._ssl.ENCODING_DER)) for c in chain]  # type: ignore[attr-defined]
    except ConnectionRefusedError:
        raise JoinError(
            f"nothing listens for joins at {host}:{port} (connection refused): on the controller, joining must be "
            "on (`dtask controller --allow-join`, or controller.join_enabled = true) and the port its log "
            "names (`accepting joins on HOST:PORT`) reachable"
        ) from None
    except (OSError, ssl.SSLError) as exc:
        raise JoinError(f"cannot reach the join service at {host}:{port}: {exc}") from None


def pinned_ca(chain: list[x509.Certificate], fingerprint: str, where: str) -> x509.Certificate:
    """The CA of chain whose fingerprint the token pins, having signed the server's certificate; else JoinError."""
    if not chain:
        raise JoinError(f"{where} presented no certificate; nothing was sent")
    for ca in chain:
        if spki_sha256(ca) != fingerprint:
            continue
        try:
            chain[0].verify_directly_issued_by(ca)
        except (InvalidSignature, ValueError, TypeError):
            break
        ident = _role_of(chain[0])
        if ident is None or ident[0] is not Role.CONTROLLER:
            break
        return ca
    raise JoinError(
        f"{where} is not the controller this token is for: its certificate does not come from the CA whose "
        f"fingerprint the token pins ({fingerprint[:16]}…); nothing was sent. Check the address, and make the "
        "token on the controller you mean to join"
    )


def _role_of(cert: x509.Certificate) -> tuple[Role, str] | None:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    uris = [u for u in san.get_values_for_type(x509.UniformResourceIdentifier) if parse_role_uri(u)]
    return parse_role_uri(uris[0]) if len(uris) == 1 else None


def _server_names(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [*san.get_values_for_type(x509.DNSName), *(str(i) for i in san.get_values_for_type(x509.IPAddress))]


def _csr(key: ec.EllipticCurvePrivateKey) -> bytes:
    req = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dtask join")]))
        .sign(key, hashes.SHA256())
    )
    return req.public_bytes(serialization.Encoding.PEM)


def check_local_ca(certs_dir: Path, fingerprint: str, force: bool) -> None:
    """Refuse to join over a ca.crt of another CA (one `make` created, say) unless force."""
    ca = certs_dir / "ca.crt"
    if not ca.exists() or force:
        return
    try:
        mine = spki_sha256(x509.load_pem_x509_certificate(ca.read_bytes()))
    except ValueError:
        mine = ""
    if mine != fingerprint:
        raise JoinError(
            f"{ca} is another CA's than the one this token pins: join into an empty DTASK_HOME, or pass --force "
            "to replace it (the local CA key, if any, is kept aside as ca.key.replaced)"
        )


def joined_before(certs_dir: Path, token_text: str) -> Joined | None:
    """The earlier join with this token, when its files are still here."""
    try:
        token = Token.parse(token_text)
        rows = json.loads((certs_dir / JOINED_FILE).read_text())
    except (TokenError, OSError, ValueError):
        return None
    row = rows.get(token.id) if isinstance(rows, dict) else None
    if not isinstance(row, dict):
        return None
    try:
        done = Joined(**row)
    except TypeError:
        return None
    return done if Path(done.cert).exists() and Path(done.key).exists() else None


def join(
    address: str, token_text: str, certs_dir: Path, *, ca_dir: Path, force: bool = False, timeout: float = 10.0
) -> Joined:
    """Join the controller at address (its join service) with the token; the key is made here and stays here."""
    try:
        token = Token.parse(token_text)
    except TokenError as exc:
        raise JoinError(str(exc)) from None
    host, port = _host_port(address)
    check_local_ca(certs_dir, token.fingerprint, force)
    where = f"the server at {host}:{port}"
    chain = fetch_chain(host, port, timeout)
    ca = pinned_ca(chain, token.fingerprint, where)
    names = _server_names(chain[0])
    if host not in names:
        raise JoinError(
            f"the controller's certificate does not name {host!r} (it names {', '.join(names) or 'no host'}): "
            f"join by one of those names, or re-issue it with `dtask certs init --host {host}` on the controller"
        )
    ca_pem = ca.public_bytes(serialization.Encoding.PEM)
    key = ec.generate_private_key(ec.SECP256R1())
    response = _call(f"{address}", ca_pem, token, _csr(key), timeout)
    return _store(certs_dir, ca_dir, token, key, response, host, force)


def _call(address: str, ca_pem: bytes, token: Token, csr: bytes, timeout: float) -> pb.JoinResponse:
    creds = grpc.ssl_channel_credentials(root_certificates=ca_pem)
    with grpc.secure_channel(address, creds) as channel:
        stub = controller_pb2_grpc.JoinStub(channel)
        try:
            response: pb.JoinResponse = stub.Join(
                pb.JoinRequest(token_id=token.id, secret=token.secret, csr_pem=csr), timeout=timeout
            )
            return response
        except grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else None
            details = exc.details() if hasattr(exc, "details") else str(exc)
            raise JoinError(f"the controller refused the join: {details} ({code.name if code else 'error'})") from None


def _store(
    certs_dir: Path,
    ca_dir: Path,
    token: Token,
    key: ec.EllipticCurvePrivateKey,
    r: pb.JoinResponse,
    host: str,
    force: bool,
) -> Joined:
    try:
        cert = x509.load_pem_x509_certificate(r.certificate_pem)
        got_ca = x509.load_pem_x509_certificate(r.ca_pem)
        role = Role(r.role)
    except ValueError as exc:
        raise JoinError(f"the controller's answer is not a certificate: {exc}") from None
    if spki_sha256(got_ca) != token.fingerprint or cert.public_key() != key.public_key():
        raise JoinError("the controller's answer does not match this join (another CA or key); nothing was stored")
    stem = stem_for(role, r.name) if role is Role.RUNNER else role.value
    crt_path, key_path = cert_paths(certs_dir, stem)
    private_dir(certs_dir)
    old_ca = certs_dir / "ca.crt"
    if force and old_ca.exists() and old_ca.read_bytes() != r.ca_pem:
        local_key = ca_dir / "ca.key"
        if local_key.exists():
            local_key.rename(local_key.with_name("ca.key.replaced"))
    write_private(
        key_path,
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )
    write_private(crt_path, r.certificate_pem)
    write_private(old_ca, r.ca_pem)
    done = Joined(
        token.id, role.value, r.name, r.serial, str(crt_path), str(key_path), _address(host, r.controller_port)
    )
    rows: dict[str, object] = {}
    with contextlib.suppress(OSError, ValueError):
        loaded = json.loads((certs_dir / JOINED_FILE).read_text())
        rows = loaded if isinstance(loaded, dict) else {}
    rows[token.id] = asdict(done)
    write_private(certs_dir / JOINED_FILE, (json.dumps(rows, indent=1) + "\n").encode())
    return done


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
