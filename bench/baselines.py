"""The baselines, each the least a grpc.aio server can do for the same work:

- ``sink``: a client-streaming Ingest that only counts entries;
- ``stream``: a server-streaming StreamMetrics that sends the same messages as Pulse (the same
  signal values, labels and times) on the same schedule, with nothing else;
- ``bidi``: a bidirectional Monitor that awaits one request and then nothing;
- ``otlp-sink``: what the collector exports to in the forwarding benchmark, acknowledging every
  OTLP/HTTP request and every OTLP/gRPC trace export without looking at it.

``python -m bench.baselines KIND PORT [GRPC_PORT]``
"""

from __future__ import annotations

import asyncio
import sys
import time

import grpc
from aiohttp import web
from google.protobuf.timestamp_pb2 import Timestamp
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from pulse.metrics_service.fleet import build_fleet
from pulse.metrics_service.signals import SIGNALS
from pulse.v1 import logs_pb2, logs_pb2_grpc, metrics_pb2, metrics_pb2_grpc


class Sink(logs_pb2_grpc.LogServiceServicer):
    async def Ingest(self, request_iterator, context):
        accepted = 0
        async for request in request_iterator:
            accepted += len(request.entries)
        return logs_pb2.IngestResponse(accepted=accepted)

    async def Monitor(self, request_iterator, context):
        await anext(aiter(request_iterator))
        await asyncio.Event().wait()  # idle until the client goes
        yield logs_pb2.MonitorResponse()  # never reached: makes this an async generator


class Stream(metrics_pb2_grpc.MetricsServiceServicer):
    """One metric type of one source per stream, as the benchmark asks of Pulse."""

    def __init__(self) -> None:
        self._fleet = build_fleet(4, ["eu-west-1", "us-east-1"])

    async def StreamMetrics(self, request, context):
        signal = SIGNALS[request.metric_types[0]]
        source = next(s for s in self._fleet if s.labels.items() >= request.label_filters.items())
        interval = request.interval_ms / 1000
        start_mono, start_wall = time.monotonic(), time.time()
        sequence = 0
        while True:
            due = start_mono + sequence * interval
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            wall = start_wall + sequence * interval
            sequence += 1
            stamp = Timestamp()
            stamp.FromNanoseconds(int(wall * 1e9))
            yield metrics_pb2.MetricData(
                metric_type=signal.name,
                value=signal.value(0, source.index, wall),
                unit=signal.unit,
                time=stamp,
                labels=source.labels,
                sequence=sequence,
            )


class Traces(trace_service_pb2_grpc.TraceServiceServicer):
    async def Export(self, request, context):
        return trace_service_pb2.ExportTraceServiceResponse()


async def _grpc(port: int, add) -> grpc.aio.Server:
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    add(server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    return server


async def _otlp_sink(http_port: int, grpc_port: int) -> None:
    async def accept(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=b"", content_type="application/x-protobuf")

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/{path:.*}", accept)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    server = await _grpc(
        grpc_port, lambda s: trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Traces(), s)
    )
    await web.TCPSite(runner, "127.0.0.1", http_port).start()
    await server.wait_for_termination()


async def main(kind: str, port: int, extra: list[int]) -> None:
    if kind == "otlp-sink":
        await _otlp_sink(port, extra[0])
        return
    adders = {
        "sink": lambda s: logs_pb2_grpc.add_LogServiceServicer_to_server(Sink(), s),
        "bidi": lambda s: logs_pb2_grpc.add_LogServiceServicer_to_server(Sink(), s),
        "stream": lambda s: metrics_pb2_grpc.add_MetricsServiceServicer_to_server(Stream(), s),
    }
    server = await _grpc(port, adders[kind])
    await server.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), [int(p) for p in sys.argv[3:]]))
