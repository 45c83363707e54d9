"""The Join service: a new machine's CSR signed for the role and name its one-time token fixes."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from dtask.v1 import controller_pb2 as pb
from dtask.v1 import controller_pb2_grpc
from dtask_common import certs, jointoken
from dtask_common.certrecords import RecordError
from dtask_common.certs import CertError
from dtask_common.roles import Role

from dtask_controller.join_limit import JoinLimiter, peer_host

log = logging.getLogger(__name__)
MAX_CSR_BYTES = 16 * 1024
#: Every token problem gets this one answer: it tells an attacker nothing about which part was wrong.
INVALID_TOKEN = "invalid or expired token: make a new one on the controller with `dtask certs token`"


class Refused(Exception):
    """A join refused with a status and a message for the caller."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class JoinSettings:
    """Where the CA is, whether joining is on, and the Controller service's port to tell joiners."""

    certs_dir: Path
    ca_dir: Path
    enabled: bool
    controller_port: int


def _public_key(csr_pem: bytes) -> Any:
    if len(csr_pem) > MAX_CSR_BYTES:
        raise Refused(grpc.StatusCode.INVALID_ARGUMENT, f"the CSR is over {MAX_CSR_BYTES} bytes")
    try:
        csr = x509.load_pem_x509_csr(csr_pem)
    except ValueError:
        raise Refused(grpc.StatusCode.INVALID_ARGUMENT, "csr_pem is not a PEM certificate signing request") from None
    if not csr.is_signature_valid:
        raise Refused(grpc.StatusCode.INVALID_ARGUMENT, "the CSR's signature does not match its key")
    key = csr.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey):
        return key
    if isinstance(key, rsa.RSAPublicKey) and key.key_size >= 2048:
        return key
    raise Refused(grpc.StatusCode.INVALID_ARGUMENT, "the CSR's key must be EC, Ed25519 or RSA of 2048 bits or more")


def sign_join(s: JoinSettings, token_id: str, secret: str, csr_pem: bytes, now: float) -> pb.JoinResponse:
    """Check the CSR, use up the token, sign (blocking: file locks and signing)."""
    key = _public_key(csr_pem)
    ca_pem = (s.certs_dir / "ca.crt").read_bytes()
    if certs.ca_key_path(s.certs_dir, s.ca_dir) is None:
        raise Refused(
            grpc.StatusCode.FAILED_PRECONDITION,
            "the controller has no CA key to sign with (its CA directory is offline): put it back and try again",
        )
    rec = jointoken.consume(s.ca_dir, token_id, secret, now)
    if rec is None:
        raise Refused(grpc.StatusCode.UNAUTHENTICATED, INVALID_TOKEN)
    role = Role(rec.role)
    cert = certs.sign(s.certs_dir, role, rec.name, key, hosts=list(rec.hosts), ca_dir=s.ca_dir, by=f"token {rec.id}")
    serial = certs.serial_hex(cert)
    jointoken.note_used_for(s.ca_dir, rec.id, serial)
    log.info("joined: %s %s with token %s (certificate %s)", role.value, rec.name, rec.id, serial)
    return pb.JoinResponse(
        certificate_pem=cert.public_bytes(serialization.Encoding.PEM),
        ca_pem=ca_pem,
        role=role.value,
        name=rec.name,
        controller_port=s.controller_port,
        serial=serial,
    )


class JoinService(controller_pb2_grpc.JoinServicer):
    """Join, bounded per caller address and in all."""

    def __init__(self, settings: JoinSettings, clock: Callable[[], float] = time.monotonic):
        self.settings = settings
        self._limiter = JoinLimiter()
        self._clock = clock

    async def Join(self, request: pb.JoinRequest, context: Any) -> pb.JoinResponse:
        peer = peer_host(context.peer())
        if not self._limiter.allow(peer, self._clock()):
            log.warning("join attempt from %s refused: too many attempts", peer)
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED, "too many join attempts from this address: wait a minute"
            )
        if not self.settings.enabled:
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                "joining is disabled on this controller: start it with `dtask controller --allow-join` "
                "(or set controller.join_enabled = true)",
            )
        try:
            return await asyncio.to_thread(
                sign_join, self.settings, request.token_id, request.secret, request.csr_pem, time.time()
            )
        except Refused as exc:
            if exc.code is grpc.StatusCode.UNAUTHENTICATED:
                log.warning("join attempt from %s refused: invalid or expired token", peer)
            await context.abort(exc.code, str(exc))
        except (CertError, RecordError, OSError) as exc:
            log.error("join attempt from %s failed: %s", peer, exc)
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION, "the controller cannot sign now (its log says why)"
            )
        raise AssertionError("unreachable")  # abort raises
