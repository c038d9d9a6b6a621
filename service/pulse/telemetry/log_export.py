"""Where Pulse's forwarded log records go: an OTLP/gRPC ``Export`` on a channel made from the
standard ``OTEL_EXPORTER_OTLP_*`` variables, or an in-memory one for tests."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from urllib.parse import urlsplit

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.util.re import parse_env_headers

__all__ = ["EXPORT_METHOD", "Export", "InMemoryExport", "grpc_exporter", "otlp_channel"]

EXPORT_METHOD = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
Metadata = tuple[tuple[str, str], ...]

# A serialized ExportLogsServiceRequest and a timeout -> the records the receiver rejected.
Export = Callable[[bytes, float], Awaitable[int]]


def grpc_exporter(channel: grpc.aio.Channel, metadata: Metadata = ()) -> Export:
    """Exports serialized requests over OTLP/gRPC on ``channel``."""
    call = channel.unary_unary(
        EXPORT_METHOD,
        request_serializer=None,  # already serialized
        response_deserializer=logs_service_pb2.ExportLogsServiceResponse.FromString,
    )

    async def export(request: bytes, timeout_s: float) -> int:
        response = await call(request, timeout=timeout_s, metadata=metadata or None)
        return response.partial_success.rejected_log_records

    return export


class InMemoryExport:
    """An ``Export`` that keeps every request, parsed, and accepts it: for tests."""

    def __init__(self) -> None:
        self.requests: list[logs_service_pb2.ExportLogsServiceRequest] = []

    async def __call__(self, request: bytes, timeout_s: float) -> int:
        self.requests.append(logs_service_pb2.ExportLogsServiceRequest.FromString(request))
        return 0

    def records(self) -> list:
        return [
            record
            for request in self.requests
            for resource in request.resource_logs
            for scope in resource.scope_logs
            for record in scope.log_records
        ]


def otlp_channel(environ: Mapping[str, str] | None = None) -> tuple[grpc.aio.Channel, Metadata]:
    """The OTLP/gRPC channel and call metadata of the logs signal, from the standard
    variables the SDK's exporter reads: ``OTEL_EXPORTER_OTLP_LOGS_*`` before
    ``OTEL_EXPORTER_OTLP_*`` for the endpoint, ``INSECURE``, ``CERTIFICATE``, ``HEADERS`` and
    ``COMPRESSION`` (``gzip``)."""
    env = os.environ if environ is None else environ

    def setting(name: str, default: str = "") -> str:
        return env.get(f"OTEL_EXPORTER_OTLP_LOGS_{name}") or env.get(
            f"OTEL_EXPORTER_OTLP_{name}", default
        )

    endpoint = setting("ENDPOINT", "http://localhost:4317")
    parts = urlsplit(endpoint if "://" in endpoint else f"//{endpoint}")
    target = parts.netloc or parts.path
    insecure = parts.scheme == "http" or setting("INSECURE").strip().lower() == "true"
    compression = (
        grpc.Compression.Gzip if setting("COMPRESSION").strip().lower() == "gzip" else None
    )
    metadata = tuple(parse_env_headers(setting("HEADERS"), liberal=True).items())
    if insecure:
        return grpc.aio.insecure_channel(target, compression=compression), metadata
    certificate = setting("CERTIFICATE")
    roots = Path(certificate).read_bytes() if certificate else None
    credentials = grpc.ssl_channel_credentials(root_certificates=roots)
    return grpc.aio.secure_channel(target, credentials, compression=compression), metadata
