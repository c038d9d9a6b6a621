"""Request decoding after authentication, with a clear answer for bytes that do not parse.

grpc decodes a request before any interceptor runs, so an undecodable message would end as
``UNKNOWN`` with a traceback, even for a caller without credentials. ``DecodingInterceptor``
is the innermost interceptor: it hands raw bytes through the others (auth, faults, metrics)
and decodes right before the servicer, ending the call with ``INVALID_ARGUMENT`` and one
throttled warning. Unknown fields are dropped on the way in, so nothing beyond the contract
is kept or forwarded to other clients.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError, Message

from pulse.server.handlers import is_skipped, original_behavior, rebuild
from pulse.telemetry import conventions as c
from pulse.telemetry.logging import Throttle

__all__ = ["DecodingInterceptor", "UndecodableRequest"]

_log = logging.getLogger("pulse.server.decoding")
WARN_EVERY_S = 10.0


class UndecodableRequest(Exception):
    """A request message that is not a valid encoding of the method's request type."""


def _type_name(deserialize: Callable[[bytes], Any]) -> str:
    owner = getattr(deserialize, "__self__", None)
    descriptor = getattr(owner, "DESCRIPTOR", None)
    return descriptor.full_name if descriptor is not None else "request"


class _Decoder:
    def __init__(
        self, method: str, deserialize: Callable[[bytes], Any], warnings: Throttle
    ) -> None:
        self.method = method
        self._warnings = warnings
        self._deserialize = deserialize
        self._type = _type_name(deserialize)

    def __call__(self, raw: bytes, index: int) -> Any:
        try:
            message = self._deserialize(raw)
        except (DecodeError, ValueError, TypeError) as error:
            where = f"message {index + 1}" if index else "the request"
            reason = f"{where} is not a valid {self._type} ({len(raw)} bytes): {error}"
            suppressed = self._warnings.allow(self.method)
            if suppressed is not None:
                _log.warning(
                    "undecodable request: %s%s",
                    reason,
                    f" ({suppressed} more since the last warning)" if suppressed else "",
                    extra={c.RPC_METHOD: self.method[1:]},
                )
            raise UndecodableRequest(reason) from None
        if isinstance(message, Message):
            message.DiscardUnknownFields()
        return message

    async def stream(self, raws: AsyncIterator[bytes]) -> AsyncIterator[Any]:
        index = 0
        async for raw in raws:
            yield self(raw, index)
            index += 1


async def _refuse(context: grpc.aio.ServicerContext, error: UndecodableRequest) -> None:
    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))


def decoding(
    method: str, handler: grpc.RpcMethodHandler, warnings: Throttle
) -> grpc.RpcMethodHandler:
    """The handler, taking raw bytes and decoding them itself right before its behavior."""
    deserialize = handler.request_deserializer
    if deserialize is None:
        return handler
    decoder = _Decoder(method, deserialize, warnings)
    behavior = original_behavior(handler)

    def requests(raw: Any) -> Any:
        return decoder.stream(raw) if handler.request_streaming else decoder(raw, 0)

    if handler.response_streaming:

        async def streaming(raw: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            try:
                decoded = requests(raw)
            except UndecodableRequest as error:
                await _refuse(context, error)
            try:
                async for response in behavior(decoded, context):
                    yield response
            except UndecodableRequest as error:
                await _refuse(context, error)

        return rebuild(handler, streaming, request_deserializer=None)

    async def unary(raw: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await behavior(requests(raw), context)
        except UndecodableRequest as error:
            await _refuse(context, error)

    return rebuild(handler, unary, request_deserializer=None)


class DecodingInterceptor(grpc.aio.ServerInterceptor):
    """Innermost: Pulse's methods receive raw bytes until the servicer is reached."""

    def __init__(self) -> None:
        self._warnings = Throttle(every_s=WARN_EVERY_S)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None or is_skipped(details.method):
            return handler
        return decoding(details.method, handler, self._warnings)
