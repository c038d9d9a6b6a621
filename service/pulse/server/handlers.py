"""Wrapping grpc.aio method handlers, shared by Pulse's interceptors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc

__all__ = [
    "SKIPPED_SERVICES",
    "Before",
    "is_skipped",
    "original_behavior",
    "rebuild",
    "rpc_type",
    "wrap_before",
]

# Infrastructure services: not authenticated, not faulted, not measured.
SKIPPED_SERVICES = ("/grpc.health.v1.Health/", "/grpc.reflection.")

Before = Callable[[grpc.aio.ServicerContext], Awaitable[None]]

_SAME: Any = object()


def is_skipped(method: str) -> bool:
    return method.startswith(SKIPPED_SERVICES)


def rpc_type(handler: grpc.RpcMethodHandler) -> str:
    if handler.request_streaming and handler.response_streaming:
        return "bidi_stream"
    if handler.request_streaming:
        return "client_stream"
    if handler.response_streaming:
        return "server_stream"
    return "unary"


def rebuild(
    handler: grpc.RpcMethodHandler,
    behavior: Callable[..., Any],
    request_deserializer: Callable[[bytes], Any] | None = _SAME,
) -> grpc.RpcMethodHandler:
    """A handler of the same shape and serializers around a new behavior.

    ``request_deserializer`` replaces the handler's (None: the behavior receives raw bytes).
    """
    factory = {
        (False, False): grpc.unary_unary_rpc_method_handler,
        (False, True): grpc.unary_stream_rpc_method_handler,
        (True, False): grpc.stream_unary_rpc_method_handler,
        (True, True): grpc.stream_stream_rpc_method_handler,
    }[(handler.request_streaming, handler.response_streaming)]
    return factory(
        behavior,
        request_deserializer=handler.request_deserializer
        if request_deserializer is _SAME
        else request_deserializer,
        response_serializer=handler.response_serializer,
    )


def original_behavior(handler: grpc.RpcMethodHandler) -> Callable[..., Any]:
    return (
        handler.unary_unary or handler.unary_stream or handler.stream_unary or handler.stream_stream
    )


def wrap_before(handler: grpc.RpcMethodHandler, before: Before) -> grpc.RpcMethodHandler:
    """Run ``before`` (which may abort the call) ahead of the handler's own behavior."""
    behavior = original_behavior(handler)
    if handler.response_streaming:

        async def streaming(request: Any, context: grpc.aio.ServicerContext) -> Any:
            await before(context)
            async for response in behavior(request, context):
                yield response

        return rebuild(handler, streaming)

    async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
        await before(context)
        return await behavior(request, context)

    return rebuild(handler, unary)
