"""Assembles Pulse: the gRPC server with its services, health, reflection and interceptors,
the admin HTTP port, and the drain on shutdown."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Sequence

import grpc
from opentelemetry.instrumentation.grpc import aio_server_interceptor
from opentelemetry.instrumentation.grpc.filters import any_of, negate, service_name, service_prefix

from pulse.config import Settings
from pulse.server.admin import AdminServer
from pulse.server.auth import AuthInterceptor, Credentials
from pulse.server.component import Component
from pulse.server.decoding import DecodingInterceptor
from pulse.server.drain import Drain, DrainInterceptor
from pulse.server.faults import FaultInterceptor, FaultRegistry
from pulse.server.introspection import HEALTH_SERVICE, Health, enable_reflection
from pulse.server.readiness import HealthFollower
from pulse.server.rpc_metrics import RpcMetricsInterceptor
from pulse.server.streams import StreamWritingInterceptor
from pulse.telemetry import Telemetry
from pulse.v1 import logs_pb2, metrics_pb2, sensors_pb2

__all__ = ["AREAS", "PulseServer", "pulse_methods"]

_log = logging.getLogger("pulse.server")

# The service areas, each a package with ``build(settings, telemetry) -> Component``.
AREAS = ("pulse.metrics_service", "pulse.log_service", "pulse.sensor_service")
_DESCRIPTORS = (metrics_pb2, logs_pb2, sensors_pb2)


def pulse_methods() -> list[str]:
    """Full method names of the contract, e.g. ``/pulse.v1.LogService/Ingest``."""
    return [
        f"/{service.full_name}/{method.name}"
        for module in _DESCRIPTORS
        for service in module.DESCRIPTOR.services_by_name.values()
        for method in service.methods
    ]


class PulseServer:
    """One Pulse process: ``await start()``, then ``grpc_port``/``admin_port``; ``await stop()``."""

    def __init__(
        self,
        settings: Settings,
        telemetry: Telemetry,
        components: Sequence[Component] | None = None,
    ) -> None:
        self.settings = settings
        self.telemetry = telemetry
        self.components = list(components) if components is not None else self._build_areas()
        self.faults = FaultRegistry(pulse_methods()) if settings.faults.enabled else None
        self.credentials = Credentials(settings.auth)
        self.health = Health()
        self.health_follower = HealthFollower(self.health, self.components)
        self.drain = Drain()
        self.grpc_port = 0
        self.admin_port = 0
        self._server: grpc.aio.Server | None = None
        self._admin = AdminServer(
            telemetry.registry, self.readiness, self.faults, self.credentials, settings.tls
        )

    @property
    def draining(self) -> bool:
        return self.drain.draining

    def _build_areas(self) -> list[Component]:
        return [
            importlib.import_module(area).build(self.settings, self.telemetry) for area in AREAS
        ]

    def _interceptors(self) -> list[grpc.aio.ServerInterceptor]:
        """Outermost first. Writing streams is outermost, so a cancelled stream unwinds in its
        own task; decoding is innermost, so a request is parsed only after authentication."""
        infrastructure = any_of(
            service_name("grpc.health.v1.Health"), service_prefix("grpc.reflection")
        )
        interceptors: list[grpc.aio.ServerInterceptor] = [
            StreamWritingInterceptor(),
            # Health's Watch writes with context.write(), which the tracing interceptor breaks.
            aio_server_interceptor(
                tracer_provider=self.telemetry.tracer_provider, filter_=negate(infrastructure)
            ),
            RpcMetricsInterceptor(self.telemetry.instruments),
            DrainInterceptor(self.drain),
        ]
        if self.credentials.enabled:
            interceptors.append(AuthInterceptor(self.credentials, self.telemetry.instruments))
        if self.faults is not None:
            interceptors.append(FaultInterceptor(self.faults, self.telemetry.instruments))
        interceptors.append(DecodingInterceptor())
        return interceptors

    def _options(self) -> list[tuple[str, int]]:
        g = self.settings.grpc
        return [
            ("grpc.max_receive_message_length", g.max_message_bytes),
            ("grpc.max_send_message_length", g.max_message_bytes),
            ("grpc.max_concurrent_streams", g.max_concurrent_streams),
            ("grpc.max_connection_age_ms", int(g.max_connection_age_s * 1000)),
            ("grpc.max_connection_age_grace_ms", int(g.max_connection_age_grace_s * 1000)),
            ("grpc.keepalive_time_ms", int(g.keepalive_time_s * 1000)),
            ("grpc.keepalive_timeout_ms", int(g.keepalive_timeout_s * 1000)),
            ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
            # A silent peer (no reads, no ping acks) is dropped after keepalive_timeout_s: every
            # ping, the flow-control probe's included, is given that long, not grpc's 60 s, and
            # keepalive pings go out on connections that carry no data.
            ("grpc.http2.ping_timeout_ms", int(g.keepalive_timeout_s * 1000)),
            ("grpc.http2.max_pings_without_data", 0),
            ("grpc.keepalive_permit_without_calls", 1),
            # Two servers must never share a port by accident.
            ("grpc.so_reuseport", 0),
        ]

    async def start(self) -> None:
        server = grpc.aio.server(interceptors=self._interceptors(), options=self._options())
        for component in self.components:
            await component.start()
            component.register(server)
        self.health.register(server)
        names = [name for comp in self.components for name in comp.service_names]
        enable_reflection([*names, HEALTH_SERVICE], server)
        self.grpc_port = self._bind(server)
        await server.start()
        self._server = server
        await self.health_follower.update()
        self.health_follower.start()
        a = self.settings.admin
        await self._admin.start(a.host or self.settings.grpc.host, a.port)
        self.admin_port = self._admin.port
        _log.info(
            "pulse serving",
            extra={
                "grpc.port": self.grpc_port,
                "admin.port": self.admin_port,
                "tls": self.settings.tls.enabled,
                "auth": self.settings.auth.enabled,
            },
        )

    def _bind(self, server: grpc.aio.Server) -> int:
        address = f"{self.settings.grpc.host}:{self.settings.grpc.port}"
        tls = self.settings.tls
        if not tls.enabled:
            return server.add_insecure_port(address)
        assert tls.cert_file is not None
        assert tls.key_file is not None
        ca = tls.client_ca_file.read_bytes() if tls.client_ca_file else None
        credentials = grpc.ssl_server_credentials(
            [(tls.key_file.read_bytes(), tls.cert_file.read_bytes())],
            root_certificates=ca,
            require_client_auth=ca is not None,
        )
        return server.add_secure_port(address, credentials)

    async def readiness(self) -> tuple[bool, dict[str, bool]]:
        checks = {"grpc_serving": self._server is not None and not self.draining}
        for component in self.components:
            checks.update(await component.checks())
        return all(checks.values()), checks

    async def stop(self, grace: float | None = None) -> None:
        """Drain: health answers NOT_SERVING and new calls are refused, while the calls in
        progress get ``grace`` seconds to finish; then the rest are cancelled."""
        grace = self.settings.grpc.shutdown_grace_s if grace is None else grace
        await self.health_follower.stop()
        await self.health.enter_graceful_shutdown()
        self.drain.start()
        if self._server is not None:
            _log.info("draining", extra={"grace_s": grace, "calls": self.drain.active})
            if not await self.drain.wait_idle(grace):
                _log.info("grace period over", extra={"calls_cancelled": self.drain.active})
            await self._server.stop(0)
        for component in reversed(self.components):
            try:
                await component.stop()
            except Exception:
                _log.exception("component stop failed")
        await self._admin.stop()
        _log.info("pulse stopped")
