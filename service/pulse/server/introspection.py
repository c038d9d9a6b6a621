"""grpc.health.v1 and server reflection (v1 and v1alpha), from grpcio's own packages."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import grpc
from google.protobuf import descriptor_pool
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc

__all__ = ["HEALTH_SERVICE", "REFLECTION_SERVICES", "Health", "enable_reflection"]

HEALTH_SERVICE = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
REFLECTION_V1 = "grpc.reflection.v1.ServerReflection"
REFLECTION_SERVICES = (REFLECTION_V1, reflection.SERVICE_NAME)


class Health(health.aio.HealthServicer):
    """grpcio's health servicer, plus ``List`` over the services Pulse registered."""

    def __init__(self) -> None:
        super().__init__()
        self._names: dict[str, None] = {"": None}

    async def set(self, service: str, status: Any) -> None:
        self._names[service] = None
        await super().set(service, status)

    async def List(
        self, request: health_pb2.HealthListRequest, context: grpc.aio.ServicerContext
    ) -> health_pb2.HealthListResponse:
        statuses = {}
        for name in self._names:
            statuses[name] = await self.Check(health_pb2.HealthCheckRequest(service=name), context)
        return health_pb2.HealthListResponse(statuses=statuses)

    def register(self, server: grpc.aio.Server) -> None:
        health_pb2_grpc.add_HealthServicer_to_server(self, server)


class _SymbolPool:
    """The default descriptor pool, where a method's full name (``pulse.v1.LogService.Ingest``,
    as grpcurl asks for it) also finds the file of its service."""

    def __init__(self, pool: descriptor_pool.DescriptorPool) -> None:
        self._pool = pool

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pool, name)

    def FindFileContainingSymbol(self, symbol: str) -> Any:
        try:
            return self._pool.FindFileContainingSymbol(symbol)
        except KeyError:
            return self._pool.FindMethodByName(symbol).containing_service.file


def enable_reflection(service_names: Iterable[str], server: grpc.aio.Server) -> None:
    """Reflection under both names; v1 and v1alpha are the same messages field for field, so
    one servicer answers both."""
    names = [*service_names, *REFLECTION_SERVICES]
    servicer = reflection.aio.ReflectionServicer(names, pool=_SymbolPool(descriptor_pool.Default()))
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)
    v1 = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(REFLECTION_V1, {"ServerReflectionInfo": v1}),)
    )
