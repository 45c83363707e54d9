"""One-time join tokens: their text (id, secret, CA fingerprint) and the CA's record of them (hashes only)."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from dtask_common.certrecords import RecordError, locked, read_rows, write_rows
from dtask_common.roles import Role

#: In the CA's directory.
TOKENS_FILE = "tokens.json"
DEFAULT_TTL_S = 3600.0
MAX_TTL_S = 24 * 3600.0
#: Used, expired or revoked tokens are dropped from the record this long after they ended.
KEEP_ENDED_S = 7 * 24 * 3600.0
JOINABLE = (Role.RUNNER, Role.OPERATOR, Role.VIEWER)
_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
TOKEN_RE = re.compile(r"^([a-z0-9]{6})\.([a-z0-9]{32})\.([0-9a-f]{64})$")


class TokenError(ValueError):
    """A token that is not one (bad text), or a token operation that cannot be done."""


def fingerprint(ca_pem: bytes) -> str:
    """The CA's fingerprint a token pins: SHA-256 of the CA certificate's SubjectPublicKeyInfo, hex."""
    cert = x509.load_pem_x509_certificate(ca_pem)
    return spki_sha256(cert)


def spki_sha256(cert: x509.Certificate) -> str:
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest()


@dataclass(frozen=True)
class Token:
    """What `dtask certs token` prints: ID.SECRET.FINGERPRINT."""

    id: str
    secret: str
    fingerprint: str

    def text(self) -> str:
        return f"{self.id}.{self.secret}.{self.fingerprint}"

    @classmethod
    def parse(cls, text: str) -> Token:
        m = TOKEN_RE.match(text.strip())
        if not m:
            raise TokenError(
                "not a dtask join token: expected ID.SECRET.FINGERPRINT as `dtask certs token` prints it "
                "(6, 32 and 64 characters); copy it whole"
            )
        return cls(m.group(1), m.group(2), m.group(3))


@dataclass(frozen=True)
class TokenRecord:
    """What the CA keeps of a token: never its secret, only the secret's hash."""

    id: str
    role: str
    name: str
    secret_sha256: str
    created_at: float
    expires_at: float
    hosts: list[str] = field(default_factory=list)
    used_at: float = 0.0
    #: The serial of the certificate the token was used for.
    used_for: str = ""
    revoked_at: float = 0.0

    def state(self, now: float) -> str:
        """valid, used, revoked or expired."""
        if self.used_at:
            return "used"
        if self.revoked_at:
            return "revoked"
        return "expired" if now >= self.expires_at else "valid"

    def ended_at(self) -> float:
        return self.used_at or self.revoked_at or self.expires_at


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _rand(n: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(n))


def check_ttl(ttl_s: float) -> None:
    if not 0 < ttl_s <= MAX_TTL_S:
        raise TokenError(f"--ttl must be more than 0 and at most {MAX_TTL_S / 3600:g}h, got {ttl_s:g} seconds")


def _load(path: Path) -> list[TokenRecord]:
    out = []
    for row in read_rows(path):
        try:
            out.append(TokenRecord(**row))
        except TypeError:
            raise RecordError(f"{path} holds a record that is not a token: {row}") from None
    return out


def _save(path: Path, records: list[TokenRecord], now: float) -> None:
    kept = [r for r in records if r.state(now) == "valid" or now - r.ended_at() < KEEP_ENDED_S]
    write_rows(path, [asdict(r) for r in kept])


def create(
    ca_dir: Path, ca_pem: bytes, role: Role, name: str, ttl_s: float, hosts: list[str], now: float | None = None
) -> tuple[Token, TokenRecord]:
    """A new token for role/name, recorded (its secret's hash) in ca_dir."""
    if role not in JOINABLE:
        raise TokenError(f"a token is for a runner, an operator or a viewer, not a {role.value}")
    check_ttl(ttl_s)
    at = time.time() if now is None else now
    path = ca_dir / TOKENS_FILE
    with locked(path):
        records = _load(path)
        taken = {r.id for r in records}
        tid = _rand(6)
        while tid in taken:
            tid = _rand(6)
        token = Token(tid, _rand(32), fingerprint(ca_pem))
        rec = TokenRecord(tid, role.value, name, _hash(token.secret), at, at + ttl_s, list(hosts))
        _save(path, [*records, rec], at)
    return token, rec


def tokens(ca_dir: Path) -> list[TokenRecord]:
    return _load(ca_dir / TOKENS_FILE)


def revoke(ca_dir: Path, token_id: str, now: float | None = None) -> TokenRecord:
    """Revoke a token not used yet; the record as it is now."""
    at = time.time() if now is None else now
    path = ca_dir / TOKENS_FILE
    with locked(path):
        records = _load(path)
        for i, r in enumerate(records):
            if r.id == token_id:
                if r.state(at) == "valid":
                    records[i] = r = replace(r, revoked_at=at)
                    _save(path, records, at)
                return r
    raise TokenError(f"no token {token_id!r}: see `dtask certs tokens`")


def consume(ca_dir: Path, token_id: str, secret: str, now: float | None = None) -> TokenRecord | None:
    """Use up a valid token whose secret matches: its record (now used), or None (unknown, wrong, used, expired)."""
    at = time.time() if now is None else now
    path = ca_dir / TOKENS_FILE
    given = _hash(secret)
    with locked(path):
        records = _load(path)
        for i, r in enumerate(records):
            if r.id == token_id and hmac.compare_digest(r.secret_sha256, given) and r.state(at) == "valid":
                records[i] = replace(r, used_at=at)
                _save(path, records, at)
                return records[i]
    return None


def note_used_for(ca_dir: Path, token_id: str, serial: str) -> None:
    """Record which certificate a used token was spent on."""
    path = ca_dir / TOKENS_FILE
    with locked(path):
        records = [replace(r, used_for=serial) if r.id == token_id else r for r in _load(path)]
        write_rows(path, [asdict(r) for r in records])
