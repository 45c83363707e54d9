"""Which ends of a session mean the controller refused this runner for good (retrying cannot help)."""

from __future__ import annotations

import grpc


class Refused(Exception):
    """The controller refused this runner (its name, certificate or version): the runner stops."""


def refusal(code: grpc.StatusCode | None, details: str) -> str | None:
    """Why the controller refused this runner for good, or None when the error may pass (retry).

    Only what a reconnect cannot change stops the runner: its certificate or name (PERMISSION_DENIED,
    UNAUTHENTICATED) or its protocol version (FAILED_PRECONDITION naming the protocol). Everything else,
    such as UNAVAILABLE or CANCELLED while a controller restarts, is retried."""
    match code:
        case grpc.StatusCode.PERMISSION_DENIED:
            why = "the controller refused this runner's name or certificate"
        case grpc.StatusCode.UNAUTHENTICATED:
            why = "the controller did not accept this runner's certificate"
        case grpc.StatusCode.FAILED_PRECONDITION if "protocol" in details:
            why = "the controller speaks another protocol version"
        case _:
            return None
    return f"{why} ({code.name}): {details or 'no reason given'}; not retrying"
