"""One coroutine per kind of client; each reconnects with exponential backoff and jitter."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import grpc

from pulse.loadgen.stats import Stats
from pulse.v1 import (
    common_pb2,
    logs_pb2,
    logs_pb2_grpc,
    metrics_pb2,
    metrics_pb2_grpc,
    sensors_pb2,
    sensors_pb2_grpc,
)

__all__ = ["Actors"]

SOURCES = ["web-1", "web-2", "api-1", "worker-1", "worker-2", "scheduler"]
TYPES = [
    "cpu_usage",
    "memory_usage",
    "disk_io",
    "network_io",
    "request_rate",
    "error_rate",
    "latency",
]
LINES = [
    (common_pb2.SEVERITY_INFO, "GET /api/orders/{n} 200 in {ms}ms"),
    (common_pb2.SEVERITY_INFO, "user {n} logged in from 10.0.{n}.7"),
    (common_pb2.SEVERITY_DEBUG, "cache hit ratio {ms}%"),
    (common_pb2.SEVERITY_WARN, "slow query on orders took {ms}ms"),
    (common_pb2.SEVERITY_WARN, "retrying upstream call, attempt {n}"),
    (common_pb2.SEVERITY_ERROR, "upstream timeout after {ms}ms: connection refused"),
    (common_pb2.SEVERITY_ERROR, "payment failed for order {n}"),
]
SECRETS = [
    "db connect password={word} host=db-1",
    "config loaded: api_key={word}",
    "outgoing request Authorization: Bearer eyJ{word}.{word}.{word}",
    'settings {{"secret": "{word}"}}',
]
RETRYABLE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.UNAUTHENTICATED,
    }
)
FILTERS = [
    logs_pb2.LogFilter(min_severity=common_pb2.SEVERITY_WARN, backlog=20),
    logs_pb2.LogFilter(pattern="timeout|refused|failed", backlog=10),
    logs_pb2.LogFilter(sources=["web-1", "web-2"]),
    logs_pb2.LogFilter(min_severity=common_pb2.SEVERITY_ERROR, sources=["api-1", "worker-1"]),
    logs_pb2.LogFilter(attributes={"region": "eu-west-1"}),
]


@dataclass
class Backoff:
    base: float = 0.2
    cap: float = 10.0
    attempt: int = 0

    def next(self, rng: random.Random) -> float:
        self.attempt += 1
        return rng.uniform(0, min(self.cap, self.base * 2**self.attempt))  # full jitter

    def reset(self) -> None:
        self.attempt = 0


class Actors:
    def __init__(
        self,
        channel: grpc.aio.Channel,
        metadata: tuple[tuple[str, str], ...],
        stats: Stats,
        stop: asyncio.Event,
        rng: random.Random,
        ingest_batch: int = 20,
        ingest_interval_s: float = 0.5,
    ) -> None:
        self.metrics = metrics_pb2_grpc.MetricsServiceStub(channel)
        self.logs = logs_pb2_grpc.LogServiceStub(channel)
        self.sensors = sensors_pb2_grpc.SensorServiceStub(channel)
        self.md, self.stats, self.stop, self.rng = metadata, stats, stop, rng
        self.ingest_batch, self.ingest_interval = ingest_batch, ingest_interval_s

    async def forever(
        self, name: str, kind: str, once: Callable[[], Awaitable[None]], pause_s: float = 0.0
    ) -> None:
        """Run ``once`` until stopped; back off after server-side failures only."""
        backoff = Backoff()
        while not self.stop.is_set():
            started = time.perf_counter()
            try:
                await once()
                code = grpc.StatusCode.OK
                backoff.reset()
            except grpc.aio.AioRpcError as error:
                code = error.code()
            except asyncio.CancelledError:
                code = grpc.StatusCode.CANCELLED
                self.stats.finished(name, kind, code, started)
                raise
            self.stats.finished(name, kind, code, started)
            if code in RETRYABLE:
                await self._sleep(backoff.next(self.rng))
            elif pause_s:
                await self._sleep(pause_s)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), seconds)

    async def _for(self, seconds: float) -> AsyncIterator[None]:
        """Tick until ``seconds`` pass or the generator stops."""
        end = time.monotonic() + seconds
        while not self.stop.is_set() and time.monotonic() < end:
            yield

    # StreamMetrics: dashboards ---------------------------------------------------------------

    async def dashboard(self) -> None:
        types = self.rng.sample(TYPES, self.rng.randint(1, 3))
        filters = self.rng.choice(
            [{}, {"region": "eu-west-1"}, {"region": "us-east-1"}, {"host": "host-01"}]
        )
        request = metrics_pb2.StreamMetricsRequest(
            metric_types=types, interval_ms=1000, label_filters=filters
        )
        call = self.metrics.StreamMetrics(request, metadata=self.md)
        end = time.monotonic() + self.rng.uniform(20, 60)
        self.stats.active += 1
        try:
            async for _ in call:
                self.stats.messages += 1
                if self.stop.is_set() or time.monotonic() > end:
                    break
        finally:
            self.stats.active -= 1
            call.cancel()

    # Ingest: agents --------------------------------------------------------------------------

    def _entry(self, n: int) -> logs_pb2.LogEntry:
        rng = self.rng
        word = uuid.UUID(int=rng.getrandbits(128)).hex[:12]
        roll = rng.random()
        if roll < 0.05:
            severity, text = common_pb2.SEVERITY_INFO, rng.choice(SECRETS).format(word=word)
        elif roll < 0.07:
            severity, text = common_pb2.SEVERITY_DEBUG, "stack dump " + "x" * 10_000
        else:
            severity, pattern = rng.choice(LINES)
            text = pattern.format(n=n % 997, ms=rng.randint(1, 900))
        return logs_pb2.LogEntry(
            severity=severity,
            message=text,
            source=rng.choice(SOURCES),
            task_id=f"task-{rng.randint(1, 40)}",
            attributes={"region": rng.choice(["eu-west-1", "us-east-1"])},
        )

    async def agent(self) -> None:
        duration = self.rng.uniform(5, 15)

        async def batches() -> AsyncIterator[logs_pb2.IngestRequest]:
            n = 0
            async for _ in self._for(duration):
                batch = logs_pb2.IngestRequest(
                    batch_id=uuid.UUID(int=self.rng.getrandbits(128)).hex,
                    entries=[self._entry(n + i) for i in range(self.ingest_batch)],
                )
                n += self.ingest_batch
                yield batch
                if self.rng.random() < 0.02:
                    yield batch  # a retry of the same batch: acknowledged, applied once
                self.stats.messages += 1
                await self._sleep(self.ingest_interval)

        await self.logs.Ingest(batches(), metadata=self.md)

    # Monitor: operators ----------------------------------------------------------------------

    async def operator(self) -> None:
        duration = self.rng.uniform(20, 40)

        async def filters() -> AsyncIterator[logs_pb2.LogFilter]:
            async for _ in self._for(duration):
                yield self.rng.choice(FILTERS)
                await self._sleep(self.rng.uniform(3, 8))

        self.stats.active += 1
        try:
            async for _ in self.logs.Monitor(filters(), metadata=self.md):
                self.stats.messages += 1
        finally:
            self.stats.active -= 1

    # SensorService: sensors, watchers, unary reads ---------------------------------------------

    async def sensor(self, sensor_id: str) -> None:
        temperature = self.rng.uniform(15, 30)

        async def readings() -> AsyncIterator[sensors_pb2.Reading]:
            nonlocal temperature
            async for _ in self._for(self.rng.uniform(20, 40)):
                temperature += self.rng.gauss(0, 0.5)
                reading = sensors_pb2.Reading(
                    id=uuid.UUID(int=self.rng.getrandbits(128)).hex,
                    sensor_id=sensor_id,
                    temperature=temperature,
                )
                reading.time.GetCurrentTime()
                yield reading
                self.stats.messages += 1
                await self._sleep(self.rng.uniform(1, 10))

        await self.sensors.Record(readings(), metadata=self.md)

    async def watcher(self) -> None:
        call = self.sensors.WatchSummaries(sensors_pb2.WatchSummariesRequest(), metadata=self.md)
        end = time.monotonic() + self.rng.uniform(30, 60)
        self.stats.active += 1
        try:
            async for _ in call:
                self.stats.messages += 1
                if self.stop.is_set() or time.monotonic() > end:
                    break
        finally:
            self.stats.active -= 1
            call.cancel()

    async def list_types(self) -> None:
        await self.metrics.ListMetricTypes(metrics_pb2.ListMetricTypesRequest(), metadata=self.md)

    async def get_summary(self, sensor_ids: list[str]) -> None:
        request = sensors_pb2.GetSummaryRequest(sensor_id=self.rng.choice(sensor_ids))
        await self.sensors.GetSummary(request, metadata=self.md)
