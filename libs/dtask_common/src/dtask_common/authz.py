"""Role checks for every RPC: a server interceptor that reads the role from the peer certificate."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import grpc
from grpc import aio

from dtask_common.certs import uri_sans
from dtask_common.revocation import OpenCall, Revocations
from dtask_common.roles import URI_SCHEME, Role, needed_roles, parse_role_uri


def peer_role_uris(context: Any) -> list[str]:
    """The distinct dtask:// URI SANs of the peer certificate, in its order (URI names only, never DNS names)."""
    auth = context.auth_context()
    raw = auth.get("peer_uri")
    if raw is None:  # a gRPC without peer_uri: read the certificate itself
        pem = auth.get("x509_pem_cert")
        raw = uri_sans(pem[0]) if pem else []
    texts = (r.decode("utf-8", "replace") if isinstance(r, bytes) else str(r) for r in raw)
    return list(dict.fromkeys(t for t in texts if t.startswith(URI_SCHEME)))


def peer_identity(context: Any) -> tuple[Role, str] | None:
    """(role, name) from the one dtask:// URI SAN of the peer certificate; None for none or several."""
    uris = peer_role_uris(context)
    return parse_role_uri(uris[0]) if len(uris) == 1 else None


def denial(method: str, uris: Sequence[str], allowed: frozenset[Role]) -> str | None:
    """The PERMISSION_DENIED message for a call by a certificate with these dtask:// URIs, or None when allowed."""
    rpc = method.rsplit("/", 1)[-1]
    need = " or ".join(sorted(r.value for r in allowed)) or "nobody"
    identity = parse_role_uri(uris[0]) if len(uris) == 1 else None
    if len(uris) > 1:
        return (
            f"{rpc} denied: the client certificate carries {len(uris)} dtask roles ({', '.join(uris)}) and must "
            "carry exactly one; issue one certificate per role with `dtask certs issue --role ROLE --name NAME`"
        )
    if identity is None:
        return (
            f"{rpc} denied: the client certificate carries no dtask role (dtask://<role>/<name>) and must carry "
            f"exactly one; issue one with `dtask certs issue --role ...` ({need} needed)"
        )
    role, name = identity
    if role in allowed:
        return None
    return f"{rpc} denied for role {role.value} ({name}): it needs the {need} role"


class RoleInterceptor(aio.ServerInterceptor):
    """Rejects every call whose certificate role the policy does not allow, before the handler runs."""

    def __init__(self, policy: Mapping[str, frozenset[Role]], revocations: Revocations | None = None):
        self._policy = policy
        self._revocations = revocations

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method
        allowed = needed_roles(method, self._policy)
        return _wrap(handler, lambda ctx: denial(method, peer_role_uris(ctx), allowed), self._revocations)


def _wrap(
    handler: grpc.RpcMethodHandler, check: Callable[[Any], str | None], revocations: Revocations | None
) -> grpc.RpcMethodHandler:
    async def guard(context: Any) -> str:
        serial = revocations.serial(context) if revocations is not None else ""
        if revocations is not None and (revoked := revocations.refusal(serial)):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, revoked)
        message = check(context)
        if message is not None:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, message)
        return serial

    def unary_response(behavior: Callable[..., Any]) -> Callable[..., Any]:
        async def run(request: Any, context: Any) -> Any:
            await guard(context)
            result = behavior(request, context)
            return await result if inspect.isawaitable(result) else result

        return run

    def stream_response(behavior: Callable[..., Any]) -> Callable[..., Any]:
        async def run(request: Any, context: Any) -> Any:
            serial = await guard(context)
            result = behavior(request, context)
            if not inspect.isasyncgen(result):
                await result
                return
            if revocations is None or not serial:
                async for item in result:
                    yield item
                return
            call = revocations.opened(serial)
            try:
                async for item in _until_revoked(result, call, context):
                    yield item
            finally:
                revocations.closed(call)

        return run

    kw = dict(
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(unary_response(handler.unary_unary), **kw)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(stream_response(handler.unary_stream), **kw)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(unary_response(handler.stream_unary), **kw)
    return grpc.stream_stream_rpc_method_handler(stream_response(handler.stream_stream), **kw)


async def _until_revoked(stream: Any, call: OpenCall, context: Any) -> Any:
    """stream's items until it ends, or until its certificate is revoked: the stream is then closed and the
    call ended with UNAUTHENTICATED (the revocation cancels the task only while it waits inside the handler)."""
    while not call.ended:
        call.inside = True
        try:
            item = await stream.__anext__()
        except StopAsyncIteration:
            return
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if not call.ended or task is None or task.uncancel() > 0:
                raise
            break
        finally:
            call.inside = False
        yield item
    await stream.aclose()
    await context.abort(grpc.StatusCode.UNAUTHENTICATED, call.ended)
