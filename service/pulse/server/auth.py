"""Bearer-token and API-key authentication for every call but health and reflection, and for
the admin port's ``/faults``: one set of credentials for both."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable

import grpc

from pulse.config import AuthSettings
from pulse.server.handlers import is_skipped, wrap_before
from pulse.telemetry import conventions as c
from pulse.telemetry.instruments import Instruments

__all__ = ["AuthInterceptor", "Credentials"]

_log = logging.getLogger("pulse.server.auth")

MISSING_HELP = "missing credentials: send 'authorization: Bearer <token>' or 'x-api-key: <key>'"


class Credentials:
    """The accepted tokens and keys; ``refusal`` compares in constant time."""

    def __init__(self, settings: AuthSettings) -> None:
        self._tokens = [s.get_secret_value().encode() for s in settings.tokens]
        self._keys = [s.get_secret_value().encode() for s in settings.api_keys]

    @property
    def enabled(self) -> bool:
        return bool(self._tokens or self._keys)

    def refusal(self, authorization: str | None, api_key: str | None) -> str | None:
        """None when the credentials are accepted, else the reason: missing | invalid."""
        bearer = key = None
        if authorization is not None:
            scheme, _, value = authorization.partition(" ")
            if scheme.lower() == "bearer":
                bearer = value.strip().encode()
        if api_key is not None:
            key = api_key.strip().encode()
        if bearer is None and key is None:
            return "missing"
        ok = False
        # Compare against every secret so timing does not reveal which one nearly matched.
        for secret in self._tokens:
            ok |= bearer is not None and hmac.compare_digest(bearer, secret)
        for secret in self._keys:
            ok |= key is not None and hmac.compare_digest(key, secret)
        return None if ok else "invalid"

    @staticmethod
    def message(reason: str) -> str:
        return MISSING_HELP if reason == "missing" else "invalid credentials"


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """``authorization: Bearer <token>`` or ``x-api-key: <key>``."""

    def __init__(self, credentials: Credentials, instruments: Instruments) -> None:
        self._credentials = credentials
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
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, Credentials.message(reason))

        return wrap_before(handler, refuse)

    def _refusal(self, metadata: tuple) -> str | None:
        found: dict[str, str] = {}
        for item in metadata:
            if item.key in ("authorization", "x-api-key") and isinstance(item.value, str):
                found[item.key] = item.value
        return self._credentials.refusal(found.get("authorization"), found.get("x-api-key"))
