"""Revoking certificates through a running controller (its Certificates service)."""

from __future__ import annotations

import grpc
from dtask.v1 import controller_pb2 as pb
from dtask_common.certrecords import Revoked
from dtask_common.convert.certificates import revoked_from_pb

from dtask_client._sync import Controller
from dtask_client.errors import from_rpc_error

REVOKE = "/dtask.v1.Certificates/RevokeCertificate"


def revoke_certificate(controller: Controller, target: str) -> tuple[list[Revoked], int]:
    """Revoke NAME, ROLE/NAME or a serial: (what was revoked, open streams of it the controller ended)."""
    method = controller._methods.channel.unary_unary(
        REVOKE,
        request_serializer=pb.RevokeCertificateRequest.SerializeToString,
        response_deserializer=pb.RevokeCertificateResponse.FromString,
    )
    try:
        response = method(pb.RevokeCertificateRequest(target=target), timeout=controller.timeout)
    except grpc.RpcError as exc:
        raise from_rpc_error(exc, controller.address, "RevokeCertificate") from None
    return [revoked_from_pb(r) for r in response.revoked], response.ended_calls
