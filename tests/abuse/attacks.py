"""Hostile clients, each run in a process of its own (``python attacks.py NAME TARGET SECONDS``)
so the probe that measures Pulse's latency in the test process does not share their event loop.
Each prints "ready" once its pressure is on, and stops by itself after SECONDS."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc

from pulse.v1 import logs_pb2, metrics_pb2, sensors_pb2

METHODS = {
    "/pulse.v1.MetricsService/StreamMetrics": (False, True),
    "/pulse.v1.MetricsService/ListMetricTypes": (False, False),
    "/pulse.v1.LogService/Ingest": (True, False),
    "/pulse.v1.LogService/Monitor": (True, True),
    "/pulse.v1.SensorService/Record": (True, False),
    "/pulse.v1.SensorService/WatchSummaries": (False, True),
    "/pulse.v1.SensorService/GetSummary": (False, False),
}
GARBAGE = [
    b"\xff\xff\xff\xff",
    bytes([3 << 3 | 2, 1, 0xFF]),  # a string field holding a byte that is not UTF-8
    logs_pb2.IngestRequest(
        batch_id="b", entries=[logs_pb2.LogEntry(message="m" * 100, source="s")]
    ).SerializeToString()[:-7],  # truncated
]
MiB = 1024 * 1024


def _ready() -> None:
    print("ready", flush=True)


async def _swallow(call: Awaitable) -> None:
    with contextlib.suppress(grpc.aio.AioRpcError):
        await call


async def _iterate(call) -> None:
    try:
        async for _ in call:
            pass
    except grpc.aio.AioRpcError:
        pass


async def _for(seconds: float, worker: Callable[[], Awaitable[None]], concurrency: int) -> None:
    deadline = time.monotonic() + seconds

    async def loop() -> None:
        while time.monotonic() < deadline:
            await worker()

    await asyncio.gather(*(loop() for _ in range(concurrency)))


async def _one(value: bytes) -> AsyncIterator[bytes]:
    yield value


async def garbage(channel: grpc.aio.Channel, seconds: float) -> None:
    """Undecodable bytes to every method, 8 calls at a time."""
    counter = iter(range(10**9))

    async def worker() -> None:
        n = next(counter)
        method, (client_streaming, server_streaming) = list(METHODS.items())[n % len(METHODS)]
        payload = GARBAGE[n % len(GARBAGE)]
        request = _one(payload) if client_streaming else payload
        kind = {
            (False, False): channel.unary_unary,
            (True, False): channel.stream_unary,
            (False, True): channel.unary_stream,
            (True, True): channel.stream_stream,
        }[(client_streaming, server_streaming)]
        call = kind(method)(request, timeout=10)
        await (_iterate(call) if server_streaming else _swallow(call))

    _ready()
    await _for(seconds, worker, 8)


def _entry(**fields) -> logs_pb2.LogEntry:
    return logs_pb2.LogEntry(**{"message": "m", "source": "agent", **fields})


async def oversized(channel: grpc.aio.Channel, seconds: float) -> None:
    """40 Ingest calls with a field of 900 KB each (and some of 3 MiB, over the message size),
    in source, task_id, batch_id, an attribute key or value, the message, then 150k-attribute
    entries: nothing of it may stay in memory."""
    ingest = channel.stream_unary(
        "/pulse.v1.LogService/Ingest",
        request_serializer=logs_pb2.IngestRequest.SerializeToString,
        response_deserializer=logs_pb2.IngestResponse.FromString,
    )
    big, huge = "x" * (900 * 1024), "x" * (3 * MiB)
    shapes = [
        lambda v: logs_pb2.IngestRequest(entries=[_entry(source=v)]),
        lambda v: logs_pb2.IngestRequest(entries=[_entry(task_id=v)]),
        lambda v: logs_pb2.IngestRequest(batch_id=v, entries=[_entry()]),
        lambda v: logs_pb2.IngestRequest(entries=[_entry(attributes={v: "v"})]),
        lambda v: logs_pb2.IngestRequest(entries=[_entry(attributes={"k": v})]),
        lambda v: logs_pb2.IngestRequest(entries=[_entry(message=v)]),
    ]

    async def send(request: logs_pb2.IngestRequest) -> None:
        async def requests() -> AsyncIterator[logs_pb2.IngestRequest]:
            yield request

        await _swallow(ingest(requests(), timeout=30))

    _ready()
    many = {f"k{i}": "" for i in range(120_000)}  # 150k attributes do not fit a 1 MiB message
    deadline = time.monotonic() + seconds
    rounds = 0
    while time.monotonic() < deadline or rounds == 0:
        await asyncio.gather(*(send(shapes[i % len(shapes)](big)) for i in range(40)))
        await asyncio.gather(*(send(shape(huge)) for shape in shapes))
        await send(logs_pb2.IngestRequest(entries=[_entry(attributes=many)]))
        rounds += 1


async def filter_flood(channel: grpc.aio.Channel, seconds: float) -> None:
    """A full ring, then one client sending filters with backlogs as fast as it can on two
    Monitor calls, opening a new one whenever Pulse ends one for sending too many."""
    ingest = channel.stream_unary(
        "/pulse.v1.LogService/Ingest",
        request_serializer=logs_pb2.IngestRequest.SerializeToString,
        response_deserializer=logs_pb2.IngestResponse.FromString,
    )

    async def fill() -> AsyncIterator[logs_pb2.IngestRequest]:
        for b in range(10):
            entries = [
                _entry(source=f"fill-{b}-{i % 50}", message=f"entry {i}") for i in range(1000)
            ]
            yield logs_pb2.IngestRequest(batch_id=uuid.uuid4().hex, entries=entries)

    await ingest(fill(), timeout=60)
    monitor = channel.stream_stream(
        "/pulse.v1.LogService/Monitor",
        request_serializer=logs_pb2.LogFilter.SerializeToString,
        response_deserializer=logs_pb2.MonitorResponse.FromString,
    )

    async def filters() -> AsyncIterator[logs_pb2.LogFilter]:
        for i in range(10**6):
            yield logs_pb2.LogFilter(pattern=f"no match {i}|z{i}", backlog=1000)
            await asyncio.sleep(0)

    async def worker() -> None:
        await _iterate(monitor(filters(), timeout=10))

    _ready()
    await _for(seconds, worker, 2)


async def subscribers(channel: grpc.aio.Channel, seconds: float) -> None:
    """150 Monitor calls that never send a filter (the limit is 100), again and again."""
    monitor = channel.stream_stream("/pulse.v1.LogService/Monitor")

    async def silent() -> AsyncIterator[bytes]:
        await asyncio.sleep(3600)
        yield b""

    async def worker() -> None:
        await _iterate(monitor(silent(), timeout=seconds + 5))

    _ready()
    await _for(seconds, worker, 150)


async def idle_ingest(channel: grpc.aio.Channel, seconds: float) -> None:
    """64 Ingest calls that open and never send, reopened whenever Pulse ends them."""
    ingest = channel.stream_unary("/pulse.v1.LogService/Ingest")

    async def silent() -> AsyncIterator[bytes]:
        await asyncio.sleep(3600)
        yield b""

    async def worker() -> None:
        await _swallow(ingest(silent(), timeout=seconds + 5))

    _ready()
    await _for(seconds, worker, 64)


async def cancels(channel: grpc.aio.Channel, seconds: float) -> None:
    """Streams of every kind opened, read a little, and cancelled, 20 at a time."""
    metrics = channel.unary_stream(
        "/pulse.v1.MetricsService/StreamMetrics",
        request_serializer=metrics_pb2.StreamMetricsRequest.SerializeToString,
        response_deserializer=metrics_pb2.MetricData.FromString,
    )
    watch = channel.unary_stream(
        "/pulse.v1.SensorService/WatchSummaries",
        request_serializer=sensors_pb2.WatchSummariesRequest.SerializeToString,
        response_deserializer=sensors_pb2.SensorSummary.FromString,
    )
    monitor = channel.stream_stream(
        "/pulse.v1.LogService/Monitor",
        request_serializer=logs_pb2.LogFilter.SerializeToString,
        response_deserializer=logs_pb2.MonitorResponse.FromString,
    )
    counter = iter(range(10**9))

    async def one_filter() -> AsyncIterator[logs_pb2.LogFilter]:
        yield logs_pb2.LogFilter(backlog=100)
        await asyncio.sleep(3600)

    async def worker() -> None:
        n = next(counter) % 3
        if n == 0:
            call = metrics(metrics_pb2.StreamMetricsRequest(interval_ms=100))
        elif n == 1:
            call = watch(sensors_pb2.WatchSummariesRequest())
        else:
            call = monitor(one_filter())
        try:
            if n == 0:
                await call.read()
            await asyncio.sleep(0.05)
        except grpc.aio.AioRpcError:
            pass
        call.cancel()

    _ready()
    await _for(seconds, worker, 20)


ATTACKS = {
    f.__name__: f for f in (garbage, oversized, filter_flood, subscribers, idle_ingest, cancels)
}


async def main(name: str, target: str, seconds: float) -> None:
    options = [("grpc.max_send_message_length", 8 * MiB)]
    async with grpc.aio.insecure_channel(target, options=options) as channel:
        await ATTACKS[name](channel, seconds)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))
