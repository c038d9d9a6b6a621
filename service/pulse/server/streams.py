"""Response streams written by the call's own task, so a cancelled stream unwinds cleanly.

grpc iterates a response generator and, when the client cancels while a message is being
written, leaves the generator suspended at its ``yield``. Python then closes it later from the
garbage collector, in another context: OpenTelemetry's span context cannot be detached there
("Failed to detach context", an ERROR with a traceback for every cancelled stream) and the
metrics wrapper sees a bare ``GeneratorExit``. ``StreamWritingInterceptor`` is the outermost
interceptor: it writes each response with ``context.write`` and always closes the generator
chain in the call's task, whatever ends the call. A write that fails because the client has
gone ends the stream quietly; the status it ends with (CANCELLED) is the client's doing.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from pulse.server.handlers import is_skipped, original_behavior, rebuild

__all__ = ["StreamWritingInterceptor", "written"]

_log = logging.getLogger("pulse.server.streams")


def written(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    """A response-streaming handler as a coroutine that writes and closes its generator."""
    if not handler.response_streaming:
        return handler
    behavior = original_behavior(handler)

    async def write_all(request: Any, context: grpc.aio.ServicerContext) -> None:
        responses = behavior(request, context)
        async with contextlib.aclosing(responses):
            async for response in responses:
                try:
                    await context.write(response)
                except Exception as error:  # grpc's ExecuteBatchError, not a public type
                    # A write fails only when the call is over for the transport: the client
                    # cancelled, its deadline passed or the connection broke (response sizes
                    # are bounded below grpc.max_message_bytes, so never "too large").
                    _log.debug("stream ended while writing: %s", error)
                    return

    return rebuild(handler, write_all)


class StreamWritingInterceptor(grpc.aio.ServerInterceptor):
    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None or is_skipped(details.method):
            return handler
        return written(handler)
