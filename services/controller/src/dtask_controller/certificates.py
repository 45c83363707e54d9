"""The Certificates service: an operator revokes a certificate while the controller runs."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import grpc
from dtask.v1 import controller_pb2 as pb
from dtask.v1 import controller_pb2_grpc
from dtask_common import certrecords
from dtask_common.certrecords import RecordError
from dtask_common.convert.certificates import revoked_to_pb
from dtask_common.revocation import Revocations

log = logging.getLogger(__name__)


class CertificatesService(controller_pb2_grpc.CertificatesServicer):
    """RevokeCertificate, for operators (the role check happened in the interceptor)."""

    def __init__(self, revocations: Revocations, ca_dir: Path):
        self.revocations = revocations
        self.ca_dir = ca_dir

    async def RevokeCertificate(
        self, request: pb.RevokeCertificateRequest, context: Any
    ) -> pb.RevokeCertificateResponse:
        target = request.target.strip()
        if not target:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "give NAME, ROLE/NAME or a serial to revoke")
        try:
            entries = certrecords.resolve(target, certrecords.issued(self.ca_dir))
        except RecordError as exc:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
            raise  # unreachable: abort raises
        own = self.revocations.serial(context)
        if any(e.serial == own for e in entries):
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"{target} is the certificate this call is made with: revoke it with another operator certificate",
            )
        try:
            recorded, ended = self.revocations.revoke(entries)
        except (RecordError, OSError) as exc:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"cannot record the revocation: {exc}")
            raise  # unreachable: abort raises
        for r in recorded:
            log.warning("revoked certificate %s (%s/%s)", r.serial, r.role or "?", r.name or "?")
        return pb.RevokeCertificateResponse(revoked=[revoked_to_pb(r) for r in recorded], ended_calls=ended)
