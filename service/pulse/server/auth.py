"""Bearer-token and API-key authentication for every call but health and reflection."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable

import grpc

from pulse.config import AuthSettings
from pulse.server.handlers import is_skipped, wrap_before
from pulse.telemetry import conventions as c
from pulse.telemetry.instruments import Instruments

__all__ = ["AuthInterceptor"]

_log = logging.getLogger("pulse.server.auth")


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """``authorization: Bearer <token>`` or ``x-api-key: <key>``, compared in constant time."""

    def __init__(self, settings: AuthSettings, instruments: Instruments) -> None:
        self._tokens = [s.get_secret_value().encode() for s in settings.tokens]
        self._keys = [s.get_secret_value().encode() for s in settings.api_keys]
        self._instruments = instruments

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None or is_skipped(details.method):
            return handler
        reason = self._refusal(details.invocation_metadata or ())
        if reason is None:
            return handler
        method = details.method

        async def refuse(context: grpc.aio.ServicerContext) -> None:
            self._instruments.auth_failures.add(1, {c.ATTR_AUTH_REASON: reason})
            _log.warning("call refused: %s credentials", reason, extra={c.RPC_METHOD: method[1:]})
            await context.abort(
                grpc.StatusCode.UNAUTHENTICATED,
                "missing credentials: send 'authorization: Bearer <token>' or 'x-api-key: <key>'"
                if reason == "missing"
                else "invalid credentials",
            )

        return wrap_before(handler, refuse)

    def _refusal(self, metadata: tuple) -> str | None:
        bearer = key = None
        for item in metadata:
            if item.key == "authorization" and isinstance(item.value, str):
                scheme, _, value = item.value.partition(" ")
                if scheme.lower() == "bearer":
                    bearer = value.strip().encode()
            elif item.key == "x-api-key" and isinstance(item.value, str):
                key = item.value.strip().encode()
        if bearer is None and key is None:
            return "missing"
        ok = False
        # Compare against every secret so timing does not reveal which one nearly matched.
        for secret in self._tokens:
            ok |= bearer is not None and hmac.compare_digest(bearer, secret)
        for secret in self._keys:
            ok |= key is not None and hmac.compare_digest(key, secret)
        return None if ok else "invalid"
