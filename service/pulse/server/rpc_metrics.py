"""RPC metrics after the semantic conventions, plus Pulse's stream metrics.

``opentelemetry-instrumentation-grpc`` emits traces only, so Pulse records
``rpc.server.call.duration`` itself, and counts stream messages in batches to stay cheap.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from pulse.server.handlers import is_skipped, original_behavior, rebuild, rpc_type
from pulse.telemetry import conventions as c
from pulse.telemetry.instruments import Instruments

__all__ = ["RpcMetricsInterceptor", "status_of"]

# Stream message counters are flushed at most this often (and when the stream ends).
FLUSH_INTERVAL_S = 1.0


def status_of(context: grpc.aio.ServicerContext, error: BaseException | None) -> grpc.StatusCode:
    """The status a call ended with, as the client sees it.

    A call that stops because its client went away is CANCELLED, or DEADLINE_EXCEEDED when the
    client's deadline had passed: the handler sees ``CancelledError`` (unary calls, streams
    cancelled while they wait) or ``GeneratorExit`` (a response stream closed by its writer).
    Neither is an error of the handler, so neither may become UNKNOWN.
    """
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code
    if isinstance(error, asyncio.CancelledError | GeneratorExit):
        remaining = context.time_remaining()
        if remaining is not None and remaining <= 0:
            return grpc.StatusCode.DEADLINE_EXCEEDED
        return grpc.StatusCode.CANCELLED
    if error is not None and not isinstance(error, grpc.aio.AbortError):
        return grpc.StatusCode.UNKNOWN
    return grpc.StatusCode.OK


class _Tally:
    """Counts messages locally and adds them to a counter at most once per interval."""

    __slots__ = ("_attrs", "_counter", "_due", "_pending")

    def __init__(self, counter: Any, attrs: dict[str, str]) -> None:
        self._counter, self._attrs = counter, attrs
        self._pending = 0
        self._due = time.monotonic() + FLUSH_INTERVAL_S

    def tick(self) -> None:
        self._pending += 1
        if time.monotonic() >= self._due:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            self._counter.add(self._pending, self._attrs)
            self._pending = 0
        self._due = time.monotonic() + FLUSH_INTERVAL_S


class RpcMetricsInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, instruments: Instruments) -> None:
        self._i = instruments

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None or is_skipped(details.method):
            return handler
        kind = rpc_type(handler)
        method = details.method[1:]
        base = {c.RPC_SYSTEM_NAME: "grpc", c.RPC_METHOD: method}
        behavior = original_behavior(handler)
        measure = self._measure_stream if handler.response_streaming else self._measure_unary
        return rebuild(handler, measure(behavior, kind, base, handler.request_streaming))

    def _measure_unary(self, behavior: Any, kind: str, base: dict, request_streaming: bool) -> Any:
        async def measured(request: Any, context: grpc.aio.ServicerContext) -> Any:
            started = time.perf_counter()
            error: BaseException | None = None
            received = self._tally_in(base) if request_streaming else None
            if received:
                self._i.active_streams.add(1, base)
                request = self._counting(request, received)
            try:
                return await behavior(request, context)
            except BaseException as exc:
                error = exc
                raise
            finally:
                if received:
                    received.flush()
                    self._i.active_streams.add(-1, base)
                self._record(context, error, started, kind, base)

        return measured

    def _measure_stream(self, behavior: Any, kind: str, base: dict, request_streaming: bool) -> Any:
        async def measured(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            started = time.perf_counter()
            error: BaseException | None = None
            sent = _Tally(self._i.stream_messages_sent, base)
            received = self._tally_in(base) if request_streaming else None
            if received:
                request = self._counting(request, received)
            self._i.active_streams.add(1, base)
            try:
                async for response in behavior(request, context):
                    yield response
                    sent.tick()
            except BaseException as exc:
                error = exc
                raise
            finally:
                sent.flush()
                if received:
                    received.flush()
                self._i.active_streams.add(-1, base)
                self._record(context, error, started, kind, base)

        return measured

    def _tally_in(self, base: dict) -> _Tally:
        return _Tally(self._i.stream_messages_received, base)

    @staticmethod
    async def _counting(requests: AsyncIterator[Any], tally: _Tally) -> AsyncIterator[Any]:
        async for request in requests:
            tally.tick()
            yield request

    def _record(
        self, context: Any, error: BaseException | None, started: float, kind: str, base: dict
    ) -> None:
        attrs = {
            **base,
            c.RPC_RESPONSE_STATUS_CODE: status_of(context, error).name,
            c.ATTR_RPC_TYPE: kind,
        }
        self._i.rpc_server_duration.record(time.perf_counter() - started, attrs)
