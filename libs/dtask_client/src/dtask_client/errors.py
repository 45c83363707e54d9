"""Client errors as types, and the one mapping from gRPC status codes to them."""

from __future__ import annotations

from typing import Any

import grpc
from dtask.v1 import controller_pb2 as pb
from dtask_common import convert
from dtask_common.address import START_HINT, AddressError, PortRanges, unavailable_message
from dtask_common.address import check_address as address_check
from dtask_common.models import FieldError
from google.protobuf.message import DecodeError

TASK_ERRORS_KEY = "dtask-task-errors-bin"


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


class BadAddress(DtaskError, AddressError):
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

    def __init__(self, message: str, code: str | None = None, errors: list[FieldError] | None = None, omitted: int = 0):
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


def check_address(address: str) -> str:
    """address if it is HOST:PORT (IPv6 as [::1]:PORT), else BadAddress saying what is wrong."""
    try:
        return address_check(address)
    except AddressError as exc:
        raise BadAddress(str(exc)) from None


def from_rpc_error(exc: grpc.RpcError, address: str, method: str = "", ranges: PortRanges | None = None) -> DtaskError:
    """The typed error for a failed call (sync or asyncio), with a message that says what to do (ranges: the
    configured ports, quoted by the hints)."""
    ranges = ranges or PortRanges()
    code: grpc.StatusCode = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN  # type: ignore[attr-defined]
    details: str = (exc.details() if hasattr(exc, "details") else "") or ""  # type: ignore[attr-defined]
    name = code.name if code is not None else "UNKNOWN"
    if code == grpc.StatusCode.UNAVAILABLE:
        return ControllerUnavailable(unavailable_message(address, details, ranges), name)
    if code == grpc.StatusCode.CANCELLED:  # not by us (the client's own cancel is filtered out before)
        return ControllerUnavailable(
            f"the controller at {address} cancelled {method or 'the call'} "
            f"({details or 'cancelled'}); it is probably stopping",
            name,
        )
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return ControllerUnavailable(
            f"the controller at {address} did not answer {method or 'the call'} in time; is it running? {START_HINT}",
            name,
        )
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidTask(details or "invalid request", name, *_task_errors(exc))
    if code == grpc.StatusCode.UNIMPLEMENTED:
        return DtaskError(
            f"{address} does not serve dtask.v1.Controller/{method or 'this call'}: it is not a "
            f"dtask controller (a runner's port? runners serve {ranges.runner_text}) or runs another dtask "
            f"version; the controller logs `listening on HOST:PORT` ({ranges.controller_text} here)",
            name,
        )
    if code == grpc.StatusCode.INTERNAL and not details:
        details = f"the controller at {address} closed the call unexpectedly"
    cls = _BY_CODE.get(code, DtaskError)
    return cls(details or name.lower().replace("_", " "), name)


def _task_errors(exc: grpc.RpcError) -> tuple[list[FieldError], int]:
    """The field errors of a rejected submission, and how many more the controller left out."""
    try:
        trailing: Any = exc.trailing_metadata()  # type: ignore[attr-defined]
    except (AttributeError, TypeError, ValueError):  # an RpcError that is not a call: no trailer
        return [], 0
    for key, value in trailing or ():
        if key == TASK_ERRORS_KEY and isinstance(value, bytes):
            msg = pb.TaskErrors()
            try:
                msg.ParseFromString(value)
            except (DecodeError, TypeError):  # not a TaskErrors message: no field errors to show
                return [], 0
            return [convert.field_error_from_pb(e) for e in msg.errors], max(0, msg.omitted)
    return [], 0
