"""No ingested entry can poison an OTLP log export: a batch reaches the collector whole, other
clients' records included, even if one record's time is outside what OTLP can carry."""

from __future__ import annotations

import asyncio

import grpc
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

from pulse.log_service.log_records import LogRecordEmitter
from pulse.v1 import logs_pb2


class Collector(logs_service_pb2_grpc.LogsServiceServicer):
    """The receiving end of an OTLP/gRPC log export: keeps every record body it gets."""

    def __init__(self) -> None:
        self.bodies: list[str] = []

    async def Export(self, request, context):
        for resource in request.resource_logs:
            for scope in resource.scope_logs:
                self.bodies.extend(r.body.string_value for r in scope.log_records)
        return logs_service_pb2.ExportLogsServiceResponse()


async def test_a_record_outside_otlps_time_range_does_not_lose_its_batch() -> None:
    collector = Collector()
    server = grpc.aio.server()
    logs_service_pb2_grpc.add_LogsServiceServicer_to_server(collector, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    provider = LoggerProvider()
    exporter = OTLPLogExporter(endpoint=f"127.0.0.1:{port}", insecure=True)
    provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
    try:
        entries = [logs_pb2.LogEntry(message="another client's", source="a", sequence=1)]
        before_1970 = logs_pb2.LogEntry(message="from 1969", source="b", sequence=2)
        before_1970.time.seconds = -1
        entries.append(before_1970)
        for entry in entries:
            if not entry.HasField("time"):
                entry.time.seconds = 1_700_000_000
        LogRecordEmitter(provider).emit(entries)
        await asyncio.to_thread(provider.force_flush)
        assert sorted(collector.bodies) == ["another client's", "from 1969"]
    finally:
        await asyncio.to_thread(provider.shutdown)
        await server.stop(0)
