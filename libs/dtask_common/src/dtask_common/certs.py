"""The local certificate authority: create a CA, issue role certificates, inspect them."""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import re
import socket
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from dtask_common.private import private_dir, write_private
from dtask_common.roles import IDENTITY_SUFFIX, URI_SCHEME, Role, role_uri, runner_identity_host

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9@._-]{0,127}$")
#: A DNS name for a certificate (an optional leading *. wildcard); IP addresses are checked apart.
HOST_RE = re.compile(r"^(\*\.)?[A-Za-z0-9_][A-Za-z0-9_.-]{0,252}$")
CA_DAYS = 3650
LEAF_DAYS = 1825


class CertError(Exception):
    """A certificate problem, with the file and the fix in the message."""


@dataclass(frozen=True)
class CertInfo:
    """What a certificate says about its holder."""

    path: Path
    subject: str
    issuer: str
    role: str
    name: str
    dns: tuple[str, ...]
    ips: tuple[str, ...]
    not_after: dt.datetime
    serial: str = ""


def default_hosts() -> list[str]:
    """SANs every server certificate carries: localhost, loopback and this host."""
    hosts = ["localhost", "127.0.0.1"]
    for h in (socket.gethostname(), socket.getfqdn()):
        if h and h not in hosts:
            hosts.append(h)
    return hosts


def cert_paths(certs_dir: Path, stem: str) -> tuple[Path, Path]:
    return certs_dir / f"{stem}.crt", certs_dir / f"{stem}.key"


def stem_for(role: Role, name: str) -> str:
    """File stem of a role certificate: runner-<name>, or the role for the others."""
    return f"runner-{name}" if role is Role.RUNNER else role.value


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_private(path: Path, data: bytes) -> None:
    write_private(path, data)


def _write_public(path: Path, data: bytes) -> None:
    private_dir(path.parent)
    path.write_bytes(data)


def ca_dir_for(certs_dir: Path) -> Path:
    """Where the CA key is kept, apart from the certificates: `ca` next to a `certs` dir, else `<dir>-ca`."""
    return certs_dir.parent / "ca" if certs_dir.name == "certs" else certs_dir.with_name(certs_dir.name + "-ca")


def ca_key_path(certs_dir: Path, ca_dir: Path | None = None) -> Path | None:
    """The CA key: in the CA dir, else where earlier versions kept it (certs_dir/ca.key); None when absent."""
    for p in ((ca_dir or ca_dir_for(certs_dir)) / "ca.key", certs_dir / "ca.key"):
        if p.exists():
            return p
    return None


def move_legacy_ca_key(certs_dir: Path, ca_dir: Path | None = None) -> Path | None:
    """Move a CA key kept among the certificates (earlier versions) into the CA dir; its new path, or None."""
    old, new = certs_dir / "ca.key", (ca_dir or ca_dir_for(certs_dir)) / "ca.key"
    if not old.exists() or new.exists():
        return None
    write_private(new, old.read_bytes())
    old.unlink()
    return new


def _key_bytes(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def init_ca(certs_dir: Path, *, force: bool = False, ca_dir: Path | None = None) -> Path:
    """Create ca.crt in certs_dir and ca.key in the CA dir (kept if present unless force)."""
    crt = certs_dir / "ca.crt"
    if crt.exists() and ca_key_path(certs_dir, ca_dir) and not force:
        return crt
    key_path = (ca_dir or ca_dir_for(certs_dir)) / "ca.key"
    key = _new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"dtask CA {socket.gethostname()}")])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_private(key_path, _key_bytes(key))
    with contextlib.suppress(FileNotFoundError):
        (certs_dir / "ca.key").unlink()  # a replaced CA's key of the earlier layout
    _write_public(crt, cert.public_bytes(serialization.Encoding.PEM))
    return crt


def _load_ca(certs_dir: Path, ca_dir: Path | None) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    crt, key_path = certs_dir / "ca.crt", ca_key_path(certs_dir, ca_dir)
    if not crt.exists() or key_path is None:
        raise CertError(
            f"no CA key in {ca_dir or ca_dir_for(certs_dir)} (ca.key) to issue certificates: run this on "
            "the machine that holds the CA (where `dtask certs init` ran), with its CA directory in place"
        )
    cert = x509.load_pem_x509_certificate(crt.read_bytes())
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CertError(f"{key_path}: unsupported CA key type")
    return cert, key


def issue(
    certs_dir: Path,
    role: Role,
    name: str,
    *,
    hosts: list[str] | None = None,
    stem: str | None = None,
    ca_dir: Path | None = None,
    by: str = "issue",
) -> tuple[Path, Path]:
    """Issue a certificate for role/name signed by the CA (ca.crt in certs_dir, its key in ca_dir); return (crt, key)."""
    key = _new_key()
    cert = sign(certs_dir, role, name, key.public_key(), hosts=[*default_hosts(), *(hosts or [])], ca_dir=ca_dir, by=by)
    crt_path, key_path = cert_paths(certs_dir, stem or stem_for(role, name))
    _write_private(key_path, _key_bytes(key))
    _write_public(crt_path, cert.public_bytes(serialization.Encoding.PEM))
    return crt_path, key_path


def _sans(role: Role, name: str, hosts: list[str], given: set[str]) -> list[x509.GeneralName]:
    sans: list[x509.GeneralName] = [x509.UniformResourceIdentifier(role_uri(role, name))]
    if role is Role.RUNNER:
        sans.append(x509.DNSName(runner_identity_host(name)))
    for h in hosts:
        if h.lower().endswith(IDENTITY_SUFFIX):
            if h in given:
                raise CertError(f"bad host {h!r}: names ending in {IDENTITY_SUFFIX} are the runners' own")
            continue
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            if HOST_RE.match(h):
                sans.append(x509.DNSName(h))
            elif h in given:  # never a name that reads as a URI (a second dtask:// role) or holds spaces
                raise CertError(
                    f"bad host {h!r}: give a host name or IP address (letters, digits and ._-, "
                    "e.g. gpu1.example.com or 10.0.0.7)"
                ) from None
    return list(dict.fromkeys(sans))


def check_hosts(hosts: list[str]) -> None:
    """Raise CertError for a host that is neither a DNS name nor an IP address."""
    _sans(Role.VIEWER, "check", hosts, set(hosts))


def sign(
    certs_dir: Path,
    role: Role,
    name: str,
    public_key: CertificatePublicKeyTypes,
    *,
    hosts: list[str],
    ca_dir: Path | None = None,
    by: str = "issue",
) -> x509.Certificate:
    """A certificate for role/name and public_key (with hosts as SANs), signed by the CA and recorded as issued."""
    from dtask_common import certrecords

    if not NAME_RE.match(name):
        raise CertError(f"bad certificate name {name!r}: use letters, digits and @._- (at most 128 characters)")
    ca_cert, ca_key = _load_ca(certs_dir, ca_dir)
    sans = _sans(role, name, hosts, set(hosts) - set(default_hosts()))
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.COMMON_NAME, name),
                    x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role.value),
                ]
            )
        )
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=LEAF_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    certrecords.record_issued(ca_dir or ca_dir_for(certs_dir), cert, role, name, by)
    return cert


def controller_name() -> str:
    return f"ctrl@{socket.gethostname()}"


def runner_default_name() -> str:
    return f"exec@{socket.gethostname()}"


def init(
    certs_dir: Path, hosts: list[str] | None = None, *, force: bool = False, ca_dir: Path | None = None
) -> list[Path]:
    """Create the CA, the controller certificate and the operator and viewer certificates."""
    made = []
    ca_exists = (certs_dir / "ca.crt").exists()
    if ca_exists and not ca_key_path(certs_dir, ca_dir) and not force:
        raise CertError(
            f"{certs_dir / 'ca.crt'} has no ca.key in {ca_dir or ca_dir_for(certs_dir)}: it was copied "
            "from the CA's machine (or its key is offline: put it back there), and a new CA here would not be trusted by that controller; issue "
            "certificates there (dtask certs issue), or pass --force to replace it with a CA of this "
            "machine"
        )
    init_ca(certs_dir, force=force, ca_dir=ca_dir)
    if not ca_exists or force:
        made.append(certs_dir / "ca.crt")
    wanted = [
        (Role.CONTROLLER, controller_name(), "controller", hosts),
        (Role.OPERATOR, "operator", "operator", None),
        (Role.VIEWER, "viewer", "viewer", None),
    ]
    for role, name, stem, extra in wanted:
        crt, key = cert_paths(certs_dir, stem)
        if force or hosts and stem == "controller" or not (crt.exists() and key.exists()):
            issue(certs_dir, role, name, hosts=extra, stem=stem, ca_dir=ca_dir, by="init")
            made.append(crt)
    return made


def ensure_runner(certs_dir: Path, name: str, ca_dir: Path | None = None) -> tuple[Path, Path]:
    """The runner certificate for name, issued from the local CA on first use."""
    crt, key = cert_paths(certs_dir, stem_for(Role.RUNNER, name))
    if crt.exists() and key.exists():
        return crt, key
    if not ca_key_path(certs_dir, ca_dir):
        missing = " and ".join(p.name for p in (crt, key) if not p.exists())
        files = [crt.name, key.name] + ([] if (certs_dir / "ca.crt").exists() else ["ca.crt"])
        raise CertError(
            f"no certificate for runner {name!r} here ({missing} missing in {certs_dir}) and no CA key to issue "
            f"one: on the controller's machine run `dtask certs issue --role runner --name {name} --out DIR`, "
            f"then copy {', '.join('DIR/' + f for f in files)} into {certs_dir}/"
        )
    return issue(certs_dir, Role.RUNNER, name, ca_dir=ca_dir, by="ensure")


def read_info(path: Path) -> CertInfo:
    """Role, name, SANs and expiry of a certificate file."""
    from dtask_common.roles import parse_role_uri

    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except FileNotFoundError:
        raise CertError(f"{path}: no such certificate file") from None
    except ValueError as exc:
        raise CertError(f"{path}: not a PEM certificate ({exc})") from None
    role, name = "", ""
    dns: tuple[str, ...] = ()
    ips: tuple[str, ...] = ()
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        uris = [
            u
            for u in dict.fromkeys(san.get_values_for_type(x509.UniformResourceIdentifier))
            if u.startswith(URI_SCHEME)
        ]
        parsed = parse_role_uri(uris[0]) if len(uris) == 1 else None  # several roles: none (refused)
        if parsed:
            role, name = parsed[0].value, parsed[1]
        dns = tuple(san.get_values_for_type(x509.DNSName))
        ips = tuple(str(i) for i in san.get_values_for_type(x509.IPAddress))
    except x509.ExtensionNotFound:
        pass
    return CertInfo(
        path=path,
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        role=role,
        name=name,
        dns=dns,
        ips=ips,
        not_after=cert.not_valid_after_utc,
        serial=serial_hex(cert),
    )


def serial_hex(cert: x509.Certificate) -> str:
    """A certificate's serial number as dtask shows it: lowercase hex."""
    return format(cert.serial_number, "x")


def uri_sans(pem: bytes) -> list[str]:
    """The URI subject alternative names of a PEM certificate, in its order."""
    cert = x509.load_pem_x509_certificate(pem)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return list(san.get_values_for_type(x509.UniformResourceIdentifier))


def check_signed_by(cert_path: Path, ca_path: Path) -> None:
    """Raise CertError unless cert_path was issued by the CA in ca_path."""
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        ca = x509.load_pem_x509_certificate(ca_path.read_bytes())
    except FileNotFoundError as exc:
        raise CertError(f"{exc.filename}: no such file") from None
    except ValueError as exc:
        raise CertError(f"not a PEM certificate: {exc}") from None
    try:
        cert.verify_directly_issued_by(ca)
    except (InvalidSignature, ValueError, TypeError):  # another CA's signature or issuer, or an unsupported key
        raise CertError(
            f"{cert_path} was not issued by the CA {ca_path} ({ca.subject.rfc4514_string()}); "
            "issue it again with `dtask certs issue` from that CA, or point --certs at the right directory"
        ) from None
    now = _now()
    if cert.not_valid_after_utc < now:
        info = read_info(cert_path)
        who = f"--role {info.role} --name {info.name}" if info.role else "--role ROLE --name NAME"
        raise CertError(
            f"{cert_path} expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC; issue a new one on "
            f"the CA's machine: `dtask certs issue {who}`"
        )
    if cert.not_valid_before_utc > now:
        raise CertError(
            f"{cert_path} is valid only from {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC: check this machine's clock"
        )
