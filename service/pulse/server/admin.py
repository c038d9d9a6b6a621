"""The admin HTTP port: /metrics, /healthz, /readyz and, when enabled, /faults."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from pulse.server.faults import FaultError, FaultRegistry

__all__ = ["AdminServer"]

MAX_BODY_BYTES = 64 * 1024


class AdminServer:
    """Serves the admin endpoints; ``readiness`` returns (ready, checks) on each /readyz."""

    def __init__(
        self,
        registry: CollectorRegistry,
        readiness: Callable[[], Awaitable[tuple[bool, dict[str, bool]]]],
        faults: FaultRegistry | None,
    ) -> None:
        self._registry = registry
        self._readiness = readiness
        self._faults = faults
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self, host: str, port: int) -> None:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_route("*", "/faults", self._faults_endpoint)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _metrics(self, _: web.Request) -> web.Response:
        body = generate_latest(self._registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

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
        if request.method == "GET":
            return web.json_response(self._faults.snapshot())
        if request.method == "DELETE":
            self._faults.clear()
            return web.json_response(self._faults.snapshot())
        if request.method in ("PUT", "POST"):
            return await self._replace_faults(request)
        return _error(405, "allowed methods: GET, PUT, DELETE")

    async def _replace_faults(self, request: web.Request) -> web.Response:
        assert self._faults is not None
        try:
            spec: Any = json.loads(await request.read() or b"{}")
            self._faults.replace(spec)
        except json.JSONDecodeError as exc:
            return _error(400, f"body is not JSON: {exc.msg}")
        except FaultError as exc:
            return _error(400, str(exc))
        return web.json_response(self._faults.snapshot())


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)
