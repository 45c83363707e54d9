"""The dtask Python client: `Controller` (sync) and `AsyncController` (asyncio), returning models."""

from dtask_common.results_table import ResultsTable, UnknownColumn

from dtask_client._async import AsyncController
from dtask_client._sync import Controller
from dtask_client._wait import WaitCounts
from dtask_client.errors import (
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
    "ResultsTable",
    "UnknownColumn",
    "WaitCounts",
    "WaitTimeout",
]
