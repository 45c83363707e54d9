"""The dtask Python client: `Controller` (sync) and `AsyncController` (asyncio), returning models."""

from dtask_common.client._async import AsyncController
from dtask_common.client._sync import Controller
from dtask_common.client.errors import (
    BadAddress,
    CertificateError,
    Conflict,
    ControllerUnavailable,
    DtaskError,
    InvalidTask,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    WaitTimeout,
)

__all__ = [
    "AsyncController",
    "BadAddress",
    "CertificateError",
    "Conflict",
    "Controller",
    "ControllerUnavailable",
    "DtaskError",
    "InvalidTask",
    "NotFound",
    "PermissionDenied",
    "ResourceExhausted",
    "WaitTimeout",
]
