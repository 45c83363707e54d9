"""Roles carried in certificates, and which role may call which RPC."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from enum import StrEnum

URI_SCHEME = "dtask://"
#: DNS names under this suffix name a runner, not a host: every runner certificate carries its own, and no
#: other certificate can (`--host` refuses them). `.invalid` never resolves.
IDENTITY_SUFFIX = ".runner.dtask.invalid"


class Role(StrEnum):
    """Who a certificate holder is."""

    CONTROLLER = "controller"
    RUNNER = "runner"
    OPERATOR = "operator"
    VIEWER = "viewer"


def runner_identity_host(name: str) -> str:
    """The DNS name runner `name`'s certificate carries: a client that dials a runner with it (as the TLS target
    name) accepts only that runner's certificate, whatever host it runs on."""
    return hashlib.sha256(name.encode()).hexdigest()[:40] + IDENTITY_SUFFIX


def role_uri(role: Role, name: str) -> str:
    return f"{URI_SCHEME}{role.value}/{name}"


def parse_role_uri(uri: str) -> tuple[Role, str] | None:
    """(role, name) from a dtask://role/name URI SAN, or None."""
    if not uri.startswith(URI_SCHEME):
        return None
    role_text, _, name = uri[len(URI_SCHEME) :].partition("/")
    try:
        role = Role(role_text)
    except ValueError:
        return None
    return (role, name) if name else None


READERS = frozenset({Role.VIEWER, Role.OPERATOR})
OPERATORS = frozenset({Role.OPERATOR})
RUNNERS = frozenset({Role.RUNNER})
ANYONE = frozenset(Role)

_C = "/dtask.v1.Controller/"
CONTROLLER_POLICY: Mapping[str, frozenset[Role]] = {
    _C + "Connect": RUNNERS,
    _C + "WhoAmI": ANYONE,
    _C + "ListExecutors": READERS,
    _C + "GetExecutor": READERS,
    _C + "GetResourceUsage": READERS,
    _C + "ListTasks": READERS,
    _C + "GetTask": READERS,
    _C + "IsFinished": READERS,
    _C + "GetTaskOutput": READERS,
    _C + "Watch": READERS,
    _C + "SubmitTasks": OPERATORS,
    _C + "CancelTask": OPERATORS,
    _C + "RetryTask": OPERATORS,
    _C + "DrainExecutor": OPERATORS,
    _C + "PauseQueue": OPERATORS,
    _C + "ResumeQueue": OPERATORS,
    _C + "Prune": OPERATORS,
    "/dtask.v1.Certificates/RevokeCertificate": OPERATORS,
}

_R = "/dtask.v1.Runner/"
RUNNER_POLICY: Mapping[str, frozenset[Role]] = {
    _R + "Status": READERS | {Role.CONTROLLER},
    _R + "Drain": OPERATORS | {Role.CONTROLLER},
    _R + "ReadOutput": READERS,
}

# Services every authenticated certificate may use (grpcurl list/describe, health checks).
OPEN_PREFIXES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
)


def needed_roles(method: str, policy: Mapping[str, frozenset[Role]]) -> frozenset[Role]:
    """Roles allowed to call method; empty when nobody may (unknown methods)."""
    if method.startswith(OPEN_PREFIXES):
        return ANYONE
    return policy.get(method, frozenset())
