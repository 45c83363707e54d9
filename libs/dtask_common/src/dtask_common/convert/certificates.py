"""Revoked certificates <-> protobuf."""

from __future__ import annotations

from dtask.v1 import controller_pb2 as pb

from dtask_common.models.certificates import Revoked


def revoked_to_pb(r: Revoked) -> pb.RevokedCertificate:
    return pb.RevokedCertificate(serial=r.serial, role=r.role, name=r.name, revoked_at=r.revoked_at)


def revoked_from_pb(m: pb.RevokedCertificate) -> Revoked:
    return Revoked(serial=m.serial, role=m.role, name=m.name, revoked_at=m.revoked_at)
