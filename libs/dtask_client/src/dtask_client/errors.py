"""Client errors as types, and the one mapping from gRPC status codes to them."""

from __future__ import annotations

from typing import Any

import grpc
from dtask.v1 import controller_pb2 as pb
from dtask_common import address as common_address
from dtask_common import convert
from dtask_common.models import FieldError

TASK_ERRORS_KEY = "dtask-task-errors-bin"
START_HINT = "start one with `make run-controller` or `dtask controller`, or pass --controller HOST:PORT"


class DtaskError(Exception):
    """Any error the dtask client reports; .message is the server's text, .code the gRPC status name."""

    default_code = "UNKNOWN"

    def __init__(self, message: str, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code

    def __str__(self) -> str:
        return self.message


class ControllerUnavailable(DtaskError):
    """The controller cannot be reached (not running, wrong address, TLS handshake failed)."""

    default_code = "UNAVAILABLE"


class BadAddress(DtaskError, common_address.BadAddress):
    """The controller address is not HOST:PORT (raised before dialling)."""

    default_code = "BAD_ADDRESS"


class CertificateError(DtaskError):
    """Local certificate files are missing, unreadable or not from the CA (raised before dialling)."""

    default_code = "CERTIFICATE"


class PermissionDenied(DtaskError):
    """The certificate's role may not make this call."""

    default_code = "PERMISSION_DENIED"


class NotFound(DtaskError):
    """No such task or executor."""

    default_code = "NOT_FOUND"


class InvalidTask(DtaskError):
    """A submission (or another request) was rejected as invalid; .errors lists the first bad fields,
    .omitted counts those the controller left out (it sends as many as fit in a gRPC trailer)."""

    default_code = "INVALID_ARGUMENT"

    def __init__(self, message: str, code: str | None = None, errors: list[FieldError] | None = None,
                 omitted: int = 0):
        super().__init__(message, code)
        self.errors: list[FieldError] = list(errors or [])
        self.omitted = omitted


class Conflict(DtaskError):
    """The request does not fit the current state (e.g. cancel of a finished task)."""

    default_code = "FAILED_PRECONDITION"


class ResourceExhausted(DtaskError):
    """The controller refused for lack of capacity or a limit."""

    default_code = "RESOURCE_EXHAUSTED"


class WaitTimeout(DtaskError, TimeoutError):
    """wait() gave up before the tasks finished."""

    default_code = "DEADLINE_EXCEEDED"


_BY_CODE: dict[grpc.StatusCode, type[DtaskError]] = {
    grpc.StatusCode.UNAVAILABLE: ControllerUnavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: ControllerUnavailable,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.UNAUTHENTICATED: PermissionDenied,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidTask,
    grpc.StatusCode.FAILED_PRECONDITION: Conflict,
    grpc.StatusCode.ALREADY_EXISTS: Conflict,
    grpc.StatusCode.ABORTED: Conflict,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
}

_TLS_WORDS = ("ssl", "handshake", "certificate", "tls", "alert")
#: OpenSSL reasons meaning the peer answered, but not with TLS (an HTTP server, some other service).
_NOT_TLS_WORDS = ("wrong_version_number", "packet_length_too_long", "http_request", "unknown_protocol")
_RESOLVE_WORDS = ("resolv", "lookup", "dns", "domain name not found")


def check_address(address: str) -> str:
    """address if it is HOST:PORT (IPv6 as [::1]:PORT), else BadAddress saying what is wrong."""
    try:
        return common_address.check_address(address)
    except common_address.BadAddress as exc:
        raise BadAddress(exc.message) from None


def from_rpc_error(exc: grpc.RpcError, address: str, method: str = "") -> DtaskError:
    """The typed error for a failed call (sync or asyncio), with a message that says what to do."""
    code: grpc.StatusCode = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN  # type: ignore[attr-defined]
    details: str = (exc.details() if hasattr(exc, "details") else "") or ""  # type: ignore[attr-defined]
    name = code.name if code is not None else "UNKNOWN"
    if code == grpc.StatusCode.UNAVAILABLE:
        low = details.lower()
        if any(w in low for w in _NOT_TLS_WORDS):
            return ControllerUnavailable(
                f"something at {address} answers, but not with TLS: it is not a dtask controller; check the "
                "port (the controller logs `listening on HOST:PORT`, 50051-50059 by default)", name)
        if "certificate_verify_failed" in low or "unable to get local issuer" in low:
            return ControllerUnavailable(
                f"TLS handshake with the controller at {address} failed: its certificate was not issued by your "
                "CA (ca.crt in --certs); copy ca.crt and a certificate issued from it from the controller's "
                "machine, or check that this is the right controller", name)
        if any(w in low for w in _TLS_WORDS):
            return ControllerUnavailable(
                f"TLS handshake with the controller at {address} failed: check --certs/--cert/--key and "
                "that the certificate and the controller's come from the same CA, and that the controller's "
                "certificate names this host (`dtask certs init --host ...`)", name)
        if any(w in low for w in _RESOLVE_WORDS):
            host = address.rpartition(":")[0] or address
            return ControllerUnavailable(f"cannot resolve the controller's host {host!r} (in {address}): "
                                         "check the name, or use its IP address", name)
        if "socket closed" in low or "connection reset" in low:
            return ControllerUnavailable(
                f"the controller at {address} closed the connection: it may refuse your certificate (expired, "
                "or from another CA: `dtask certs show FILE`), or it was stopping; "
                "its log says which", name)
        if "connection refused" in low or "failed to connect" in low:
            return ControllerUnavailable(f"cannot reach the controller at {address}: {START_HINT}", name)
        return ControllerUnavailable(f"lost the controller at {address} ({details or 'unavailable'}); "
                                     f"is it running? {START_HINT}", name)
    if code == grpc.StatusCode.CANCELLED:  # not by us (the client's own cancel is filtered out before)
        return ControllerUnavailable(f"the controller at {address} cancelled {method or 'the call'} "
                                     f"({details or 'cancelled'}); it is probably stopping", name)
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return ControllerUnavailable(
            f"the controller at {address} did not answer {method or 'the call'} in time; is it running? "
            f"{START_HINT}", name)
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidTask(details or "invalid request", name, *_task_errors(exc))
    if code == grpc.StatusCode.UNIMPLEMENTED:
        return DtaskError(f"{address} does not serve dtask.v1.Controller/{method or 'this call'}: it is not a "
                          "dtask controller (a runner's port? runners serve 50100-50199) or runs another dtask "
                          "version; the controller logs `listening on HOST:PORT`", name)
    if code == grpc.StatusCode.INTERNAL and not details:
        details = f"the controller at {address} closed the call unexpectedly"
    cls = _BY_CODE.get(code, DtaskError)
    return cls(details or name.lower().replace("_", " "), name)


def _task_errors(exc: grpc.RpcError) -> tuple[list[FieldError], int]:
    """The field errors of a rejected submission, and how many more the controller left out."""
    try:
        trailing: Any = exc.trailing_metadata()  # type: ignore[attr-defined]
    except Exception:
        return [], 0
    for key, value in trailing or ():
        if key == TASK_ERRORS_KEY and isinstance(value, bytes):
            msg = pb.TaskErrors()
            try:
                msg.ParseFromString(value)
            except Exception:
                return [], 0
            return [convert.field_error_from_pb(e) for e in msg.errors], max(0, msg.omitted)
    return [], 0
