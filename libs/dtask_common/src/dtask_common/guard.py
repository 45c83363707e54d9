"""A server interceptor: undecodable requests get INVALID_ARGUMENT, unexpected errors INTERNAL, never UNKNOWN."""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from grpc import aio

log = logging.getLogger(__name__)
#: Characters of a status message: it travels in the trailer, which gRPC clients cap at 8-16 KiB.
MAX_DETAILS = 1000


class Undecodable:
    """What a request deserializer gives instead of raising: the reason the bytes are not the request."""

    __slots__ = ("reason",)

    def __init__(self, reason: str):
        self.reason = reason


def _decoder(deserialize: Callable[[bytes], Any] | None, rpc: str) -> Callable[[bytes], Any]:
    def run(raw: bytes) -> Any:
        if deserialize is None:
            return raw
        try:
            return deserialize(raw)
        except Exception as exc:  # DecodeError, bad UTF-8 in a string field, anything a parser raises
            return Undecodable(_reason(rpc, exc))

    return run


def _reason(rpc: str, exc: Exception) -> str:
    detail = str(exc).rsplit(": ", 1)[-1].strip() or type(exc).__name__
    if "utf-8" in detail.lower():
        detail += " (every string field must be valid UTF-8; send bytes fields for binary data)"
    return f"the {rpc} request is not a valid protobuf message: {detail}"


def bounded(details: str) -> str:
    """A status message cut to MAX_DETAILS characters (it may quote a client's long input)."""
    if len(details) <= MAX_DETAILS:
        return details
    return f"{details[:MAX_DETAILS]}… ({len(details) - MAX_DETAILS} more characters)"


class _BoundedContext:
    """The servicer context, with every status message it sends cut to a size a trailer can hold."""

    __slots__ = ("_context",)

    def __init__(self, context: Any):
        self._context = context

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)

    async def abort(self, code: grpc.StatusCode, details: str = "", trailing_metadata: Any = ()) -> None:
        await self._context.abort(code, bounded(details), trailing_metadata)

    def set_details(self, details: str) -> None:
        self._context.set_details(bounded(details))


class GuardInterceptor(aio.ServerInterceptor):
    """Wraps every handler so that bad bytes and bugs end the call with a status a client can act on."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method
        return wrap(handler, method.decode() if isinstance(method, bytes) else str(method))


async def _internal(context: Any, method: str, exc: Exception) -> None:
    """Log the traceback once, end the call with a short INTERNAL."""
    rpc = method.rsplit("/", 1)[-1]
    if isinstance(exc, NotImplementedError):  # a servicer's default method
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"this server does not implement {rpc}")
    log.error("%s failed with an unexpected %s: %s", method, type(exc).__name__, exc, exc_info=exc)
    await context.abort(
        grpc.StatusCode.INTERNAL,
        f"{rpc} failed with an unexpected {type(exc).__name__} (a bug: the server's log has the traceback)",
    )


async def _refuse(request: Any, context: Any) -> None:
    if isinstance(request, Undecodable):
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.reason)


async def _checked(requests: AsyncIterator[Any], context: Any) -> AsyncIterator[Any]:
    async for request in requests:
        await _refuse(request, context)
        yield request


async def _admitted(request: Any, context: Any, streaming: bool) -> Any:
    """The request (or stream of requests) with undecodable ones refused."""
    if streaming:
        return _checked(request, context)
    await _refuse(request, context)
    return request


def wrap(handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
    """handler with its request deserializer and behaviour guarded."""
    rpc = method.rsplit("/", 1)[-1]

    def unary_response(behavior: Callable[..., Any], streaming_request: bool) -> Callable[..., Any]:
        async def run(request: Any, context: Any) -> Any:
            request = await _admitted(request, context, streaming_request)
            try:
                result = behavior(request, _BoundedContext(context))
                return await result if inspect.isawaitable(result) else result
            except Exception as exc:
                if isinstance(exc, aio.AbortError):
                    raise
                await _internal(context, method, exc)

        return run

    def stream_response(behavior: Callable[..., Any], streaming_request: bool) -> Callable[..., Any]:
        async def run(request: Any, context: Any) -> Any:
            request = await _admitted(request, context, streaming_request)
            try:
                result = behavior(request, _BoundedContext(context))
                if inspect.isasyncgen(result):
                    async for item in result:
                        yield item
                elif inspect.isawaitable(result):
                    await result  # a handler that writes with context.write
                elif result is not None:
                    for item in result:
                        yield item
            except Exception as exc:
                if isinstance(exc, aio.AbortError):
                    raise
                await _internal(context, method, exc)

        return run

    kw = dict(
        request_deserializer=_decoder(handler.request_deserializer, rpc),
        response_serializer=handler.response_serializer,
    )
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(unary_response(handler.unary_unary, False), **kw)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(stream_response(handler.unary_stream, False), **kw)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(unary_response(handler.stream_unary, True), **kw)
    return grpc.stream_stream_rpc_method_handler(stream_response(handler.stream_stream, True), **kw)
