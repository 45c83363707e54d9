"""Which ends of a session stop the runner: refusals for name, certificate or version; nothing transient."""

from __future__ import annotations

import grpc
import pytest
from dtask_runner.refusal import refusal

C = grpc.StatusCode


@pytest.mark.parametrize(
    ("code", "details"),
    [
        (
            C.PERMISSION_DENIED,
            "Hello names executor 'x' but the certificate is for 'r1'; run the runner with --name r1",
        ),
        (C.PERMISSION_DENIED, "Connect denied for role operator (operator): it needs the runner role"),
        (C.PERMISSION_DENIED, "executor r1 sent 21 reports on attempts that were not dispatched to it"),
        (C.UNAUTHENTICATED, ""),
        (C.FAILED_PRECONDITION, "runner 0.2 speaks protocol 2 but controller 0.1 speaks protocol 1"),
    ],
)
def test_refusals_stop_with_the_reason(code: grpc.StatusCode, details: str) -> None:
    why = refusal(code, details)
    assert why is not None and code.name in why and why.endswith("not retrying")
    assert (details or "no reason given") in why


@pytest.mark.parametrize(
    ("code", "details"),
    [
        (C.UNAVAILABLE, "failed to connect to all addresses"),
        (C.CANCELLED, "the controller is stopping"),
        (C.INTERNAL, "Internal error from Core"),
        (C.UNKNOWN, ""),
        (C.DEADLINE_EXCEEDED, ""),
        (C.RESOURCE_EXHAUSTED, ""),
        (C.ABORTED, "another runner process connected as executor r1"),
        (C.FAILED_PRECONDITION, "the runner sent no Hello; the first message of Connect must be Hello"),
        (None, ""),
    ],
)
def test_transient_ends_are_retried(code: grpc.StatusCode | None, details: str) -> None:
    assert refusal(code, details) is None
