"""The drain on shutdown: health says NOT_SERVING, new application calls are refused with
UNAVAILABLE, calls in progress get the grace period to finish."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from pulse.server.handlers import is_skipped, original_behavior, rebuild

__all__ = ["Drain", "DrainInterceptor"]

REFUSAL = "Pulse is shutting down: retry the call, another replica (or this one, restarted) answers"


class Drain:
    """Counts application calls in progress; once started, refuses new ones."""

    def __init__(self) -> None:
        self.draining = False
        self.active = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def start(self) -> None:
        self.draining = True

    async def wait_idle(self, timeout_s: float) -> bool:
        """Whether every call in progress ended within ``timeout_s``."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    def enter(self) -> None:
        self.active += 1
        self._idle.clear()

    def leave(self) -> None:
        self.active -= 1
        if self.active == 0:
            self._idle.set()


class DrainInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, drain: Drain) -> None:
        self._drain = drain

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None or is_skipped(details.method):
            return handler
        drain, behavior = self._drain, original_behavior(handler)
        if handler.response_streaming:

            async def streaming(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator:
                if drain.draining:
                    await context.abort(grpc.StatusCode.UNAVAILABLE, REFUSAL)
                drain.enter()
                try:
                    async for response in behavior(request, context):
                        yield response
                finally:
                    drain.leave()

            return rebuild(handler, streaming)

        async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            if drain.draining:
                await context.abort(grpc.StatusCode.UNAVAILABLE, REFUSAL)
            drain.enter()
            try:
                return await behavior(request, context)
            finally:
                drain.leave()

        return rebuild(handler, unary)
