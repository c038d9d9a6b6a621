"""What the benchmark asks of a server, the same for Pulse and its baselines."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator

import grpc
import psutil

from pulse.v1 import logs_pb2, logs_pb2_grpc, metrics_pb2, metrics_pb2_grpc

__all__ = [
    "BATCH",
    "IDLE_STREAMS",
    "STREAMS",
    "STREAM_SECONDS",
    "asyncio_schedule_lags",
    "batches",
    "idle_stream_bytes",
    "ingest_rate",
    "p99",
    "stream_lags",
]

BATCH = 100
INGEST_SECONDS = 5.0
STREAMS = 500
INTERVAL_S = 0.1
STREAM_SECONDS = 10.0
IDLE_STREAMS = 1000


def batches(count: int = 50) -> list[logs_pb2.IngestRequest]:
    """Batches of BATCH entries of 8 sources and 50 tasks, messages with nothing to redact."""
    return [
        logs_pb2.IngestRequest(
            entries=[
                logs_pb2.LogEntry(
                    source=f"src-{j % 8}",
                    task_id=f"t-{j % 50}",
                    severity=9,
                    message=f"GET /api/orders/{i}-{j} 200 in 12ms user=42",
                )
                for j in range(BATCH)
            ]
        )
        for i in range(count)
    ]


async def ingest_rate(port: int, subscribers: int = 0, seconds: float = INGEST_SECONDS) -> float:
    """Entries per second through one Ingest stream, with ``subscribers`` Monitor calls whose
    filter matches everything reading what they get."""
    requests_made = batches()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = logs_pb2_grpc.LogServiceStub(channel)
        stop = asyncio.Event()

        async def one_filter() -> AsyncIterator[logs_pb2.LogFilter]:
            yield logs_pb2.LogFilter()
            await stop.wait()

        async def drain(call) -> None:
            async for _ in call:
                pass

        monitors = [
            asyncio.create_task(drain(stub.Monitor(one_filter()))) for _ in range(subscribers)
        ]
        await asyncio.sleep(0.5)
        started = time.perf_counter()
        end = started + seconds

        async def requests() -> AsyncIterator[logs_pb2.IngestRequest]:
            i = 0
            while time.perf_counter() < end:
                yield requests_made[i % len(requests_made)]
                i += 1

        reply = await stub.Ingest(requests())
        elapsed = time.perf_counter() - started
        stop.set()
        for task in monitors:
            task.cancel()
        await asyncio.gather(*monitors, return_exceptions=True)
    return reply.accepted / elapsed


async def stream_lags(port: int) -> list[float]:
    """How late each sample of STREAMS StreamMetrics streams (one type of one source, every
    INTERVAL_S) arrives against the time it carries, over STREAM_SECONDS."""
    lags: list[float] = []
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = metrics_pb2_grpc.MetricsServiceStub(channel)
        request = metrics_pb2.StreamMetricsRequest(
            metric_types=["cpu_usage"],
            interval_ms=int(INTERVAL_S * 1000),
            label_filters={"host": "host-01"},
        )
        end = time.time() + STREAM_SECONDS

        async def one() -> None:
            call = stub.StreamMetrics(request)
            async for sample in call:
                now = time.time()
                lags.append(now - sample.time.ToNanoseconds() / 1e9)
                if now > end:
                    call.cancel()
                    return

        await asyncio.gather(*(one() for _ in range(STREAMS)), return_exceptions=True)
    return lags


async def asyncio_schedule_lags() -> list[float]:
    """The same schedule kept by bare asyncio sleeps in this process: the loop's own lateness."""
    lags: list[float] = []
    end = time.monotonic() + STREAM_SECONDS

    async def one() -> None:
        start = time.monotonic()
        i = 0
        while time.monotonic() < end:
            due = start + i * INTERVAL_S
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            lags.append(time.monotonic() - due)
            i += 1

    await asyncio.gather(*(one() for _ in range(STREAMS)))
    return lags


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) > 1 else float("nan")


async def idle_stream_bytes(port: int, process: psutil.Process) -> float:
    """RSS per idle Monitor stream: IDLE_STREAMS calls that sent one filter (each its own
    pattern, which matches nothing) and nothing since."""
    before = process.memory_info().rss
    stop = asyncio.Event()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = logs_pb2_grpc.LogServiceStub(channel)

        async def quiet(i: int) -> AsyncIterator[logs_pb2.LogFilter]:
            yield logs_pb2.LogFilter(pattern=f"^never-matches-{i}$")
            await stop.wait()

        calls = [stub.Monitor(quiet(i)) for i in range(IDLE_STREAMS)]
        await asyncio.sleep(3)
        after = process.memory_info().rss
        stop.set()
        for call in calls:
            call.cancel()
    return (after - before) / IDLE_STREAMS


def accepted_batches(count: int = 50) -> list[list[logs_pb2.LogEntry]]:
    """``batches()`` as Ingest hands them on: times, severities and sequences set."""
    sequence = 0
    out = []
    for request in batches(count):
        entries = list(request.entries)
        for entry in entries:
            sequence += 1
            entry.sequence = sequence
            entry.time.FromNanoseconds(time.time_ns())
        out.append(entries)
    return out


async def forward_rate(endpoint: str, seconds: float = INGEST_SECONDS) -> tuple[float, float, int]:
    """Entries per second the forwarder of this process encodes and exports to the OTLP/gRPC
    ``endpoint``, the CPU seconds of this process per entry, and how many, over ``seconds``."""
    from opentelemetry.sdk.resources import Resource

    from pulse.log_service.forwarding import LogForwarder
    from pulse.log_service.otlp_logs import OtlpLogEncoder
    from pulse.telemetry.log_export import grpc_exporter

    prepared = accepted_batches()
    me = psutil.Process()
    async with grpc.aio.insecure_channel(endpoint) as channel:
        forwarder = LogForwarder(
            OtlpLogEncoder(Resource.create({"service.name": "pulse-bench"})),
            grpc_exporter(channel),
        )
        await forwarder.start()
        cpu0, started = sum(me.cpu_times()[:2]), time.perf_counter()
        end, i = started + seconds, 0
        while time.perf_counter() < end:
            if not forwarder.submit(prepared[i % len(prepared)], BATCH * 200):
                await asyncio.sleep(0.001)  # full: let the forwarder drain
                continue
            i += 1
            await asyncio.sleep(0)
        await forwarder.stop(timeout_s=30)
        elapsed = time.perf_counter() - started
        cpu = sum(me.cpu_times()[:2]) - cpu0
    count = max(forwarder.forwarded, 1)
    return forwarder.forwarded / elapsed, cpu / count, count
