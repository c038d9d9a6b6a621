"""The admin HTTP port: /metrics, /healthz, /readyz and, when enabled, /faults.

With TLS on for gRPC the admin port serves HTTPS with the same certificate: a bearer token sent
to /faults must not cross the network in clear. Client certificates are asked for but not
required, because kubelet probes cannot present one; /faults then requires one, as gRPC does.
"""

from __future__ import annotations

import json
import logging
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.aiohttp import make_aiohttp_handler

from pulse.config import TlsSettings
from pulse.server.auth import Credentials
from pulse.server.faults import FaultError, FaultRegistry

__all__ = ["AdminServer", "server_ssl_context"]

MAX_BODY_BYTES = 64 * 1024

_log = logging.getLogger("pulse.server.admin")

Readiness = Callable[[], Awaitable[tuple[bool, dict[str, bool]]]]


def server_ssl_context(tls: TlsSettings) -> ssl.SSLContext | None:
    """The admin port's TLS context: gRPC's certificate, client certificates optional."""
    if not tls.enabled:
        return None
    assert tls.cert_file is not None
    assert tls.key_file is not None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(tls.cert_file, tls.key_file)
    if tls.client_ca_file is not None:
        context.load_verify_locations(tls.client_ca_file)
        context.verify_mode = ssl.CERT_OPTIONAL
    return context


class AdminServer:
    """Serves the admin endpoints; ``readiness`` returns (ready, checks) on each /readyz."""

    def __init__(
        self,
        registry: CollectorRegistry,
        readiness: Readiness,
        faults: FaultRegistry | None,
        credentials: Credentials,
        tls: TlsSettings,
    ) -> None:
        self._registry = registry
        self._readiness = readiness
        self._faults = faults
        self._credentials = credentials
        self._tls = tls
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self, host: str, port: int) -> None:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_get("/metrics", make_aiohttp_handler(self._registry))
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_route("*", "/faults", self._faults_endpoint)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, ssl_context=server_ssl_context(self._tls))
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _healthz(self, _: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _readyz(self, _: web.Request) -> web.Response:
        ready, checks = await self._readiness()
        return web.json_response(
            {"status": "ready" if ready else "not ready", "checks": checks},
            status=200 if ready else 503,
        )

    async def _faults_endpoint(self, request: web.Request) -> web.Response:
        if self._faults is None:
            return _error(
                404,
                "fault injection is disabled; start with faults.enabled=true "
                "(PULSE_FAULTS_ENABLED=true)",
            )
        refused = self._refusal(request)
        if refused is not None:
            return refused
        if request.method == "GET":
            return web.json_response(self._faults.snapshot())
        if request.method == "DELETE":
            self._faults.clear()
            return web.json_response(self._faults.snapshot())
        if request.method in ("PUT", "POST"):
            return await self._replace_faults(request)
        return _error(405, "allowed methods: GET, PUT, DELETE")

    def _refusal(self, request: web.Request) -> web.Response | None:
        """The same credentials as gRPC: a client certificate under mTLS, a token or key when
        authentication is on."""
        if self._tls.client_ca_file is not None and not _peer_certificate(request):
            return _error(401, "a client certificate signed by tls.client_ca_file is required")
        if not self._credentials.enabled:
            return None
        reason = self._credentials.refusal(
            request.headers.get("Authorization"), request.headers.get("X-Api-Key")
        )
        if reason is None:
            return None
        _log.warning("/faults refused: %s credentials", reason)
        response = _error(401, Credentials.message(reason))
        response.headers["WWW-Authenticate"] = "Bearer"
        return response

    async def _replace_faults(self, request: web.Request) -> web.Response:
        assert self._faults is not None
        body = await request.read()
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            return _error(400, f"body is not UTF-8: invalid byte at position {exc.start}")
        try:
            spec: Any = json.loads(text or "{}")
        except json.JSONDecodeError as exc:
            return _error(400, f"body is not JSON: {exc.msg} at position {exc.pos}")
        except ValueError as exc:  # e.g. an integer of thousands of digits
            return _error(400, f"body is not usable JSON: {str(exc)[:120]}")
        try:
            self._faults.replace(spec)
        except FaultError as exc:
            return _error(400, str(exc))
        return web.json_response(self._faults.snapshot())


def _peer_certificate(request: web.Request) -> bool:
    transport = request.transport
    return bool(transport is not None and transport.get_extra_info("peercert"))


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)
