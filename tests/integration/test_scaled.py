"""Two ``pulse serve`` processes sharing one real PostgreSQL and one real NATS JetStream: what
one replica records or ingests, the other serves; a retry on either is a duplicate; kill -9 of
both loses nothing acknowledged; an engine down for 10 s gives clear errors, no crash, and
recovery without a restart (the measured recovery times are printed)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from helpers import free_port
from pulse.v1 import common_pb2, logs_pb2, logs_pb2_grpc, sensors_pb2, sensors_pb2_grpc
from shared_state import Engines, drop, fresh_database, fresh_stream

OUTAGE_S = 10.0


class Replica:
    """One ``pulse serve`` process of the cluster."""

    def __init__(self, name: str, env: dict[str, str]) -> None:
        self.name = name
        self.grpc_port, self.admin_port = free_port(), free_port()
        self.env = {**env, "PULSE_GRPC_PORT": str(self.grpc_port)}
        self.env["PULSE_ADMIN_PORT"] = str(self.admin_port)
        self.process: subprocess.Popen | None = None
        self.channel: grpc.aio.Channel | None = None

    def start(self) -> None:
        log = Path(self.env["PULSE_DATA_DIR"]) / "pulse.log"
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "pulse", "serve"],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{self.grpc_port}")

    def readyz(self) -> tuple[int, dict]:
        url = f"http://127.0.0.1:{self.admin_port}/readyz"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())
        except OSError:
            return 0, {}

    async def until_ready(self, timeout_s: float = 60.0) -> float:
        """Seconds until /readyz answers 200."""
        start = time.monotonic()
        async with asyncio.timeout(timeout_s):
            while True:
                assert self.alive, f"{self.name} exited"
                status, _ = await asyncio.to_thread(self.readyz)
                if status == 200:
                    return time.monotonic() - start
                await asyncio.sleep(0.05)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    async def kill9(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await asyncio.to_thread(self.process.wait, 30)
        await self._close_channel()

    async def stop(self) -> None:
        if self.alive:
            assert self.process is not None
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(self.process.wait, 30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        await self._close_channel()

    async def _close_channel(self) -> None:
        if self.channel is not None:
            await self.channel.close()
            self.channel = None

    @property
    def logs(self) -> logs_pb2_grpc.LogServiceStub:
        return logs_pb2_grpc.LogServiceStub(self.channel)

    @property
    def sensors(self) -> sensors_pb2_grpc.SensorServiceStub:
        return sensors_pb2_grpc.SensorServiceStub(self.channel)


@pytest.fixture
def cluster(engines: Engines, tmp_path: Path) -> Iterator[Callable[[], list[Replica]]]:
    """Builds replicas A and B on one fresh database and stream."""
    made: list[Replica] = []
    stream = fresh_stream()
    database = asyncio.run(fresh_database(engines))
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PULSE_", "OTEL_"))}
    base.update(
        PULSE_GRPC_HOST="127.0.0.1",
        PULSE_ADMIN_HOST="127.0.0.1",
        PULSE_TELEMETRY_ENABLED="false",
        PULSE_GRPC_SHUTDOWN_GRACE_S="1",
        PULSE_SENSORS_DATABASE_URL=database,
        PULSE_SENSORS_DATABASE_TIMEOUT_S="2",
        PULSE_BUS_URL=engines.nats_url,
        PULSE_BUS_STREAM=stream,
        PULSE_BUS_SUBJECT=f"pulse.{stream}",
        PULSE_BUS_MAX_BYTES=str(16 * 1024 * 1024),
        PULSE_BUS_TIMEOUT_S="2",
    )

    def build() -> list[Replica]:
        for name in ("a", "b"):
            data = tmp_path / name
            data.mkdir()
            made.append(Replica(name, {**base, "PULSE_DATA_DIR": str(data)}))
        return made

    yield build
    for replica in made:
        if replica.alive:
            assert replica.process is not None
            replica.process.kill()
    asyncio.run(drop(engines, database, stream))


async def _start(*replicas: Replica) -> None:
    for replica in replicas:
        replica.start()
    for replica in replicas:
        await replica.until_ready()


@pytest.fixture
async def replicas(cluster) -> AsyncIterator[tuple[Replica, Replica]]:
    a, b = cluster()
    await _start(a, b)
    yield a, b
    await a.stop()
    await b.stop()


def _reading(rid: str, sensor: str, value: float, seconds: int) -> sensors_pb2.Reading:
    message = sensors_pb2.Reading(id=rid, sensor_id=sensor, temperature=value)
    message.time.FromSeconds(1_700_000_000 + seconds)
    return message


def _batch(batch_id: str, *messages: str) -> logs_pb2.IngestRequest:
    return logs_pb2.IngestRequest(
        batch_id=batch_id,
        entries=[
            logs_pb2.LogEntry(message=m, source="web-1", severity=common_pb2.SEVERITY_INFO)
            for m in messages
        ],
    )


async def _ingest(replica: Replica, *batches: logs_pb2.IngestRequest) -> logs_pb2.IngestResponse:
    return await replica.logs.Ingest(iter(batches), timeout=30)


async def _record(replica: Replica, *readings: sensors_pb2.Reading) -> sensors_pb2.RecordResponse:
    return await replica.sensors.Record(iter(readings), timeout=30)


class Monitor:
    """A Monitor call and the entries it delivered."""

    def __init__(self, replica: Replica, flt: logs_pb2.LogFilter) -> None:
        self.entries: list[logs_pb2.LogEntry] = []
        self._filters: asyncio.Queue = asyncio.Queue()
        self._filters.put_nowait(flt)
        self._call = replica.logs.Monitor(self._requests())
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._read())

    async def _requests(self) -> AsyncIterator[logs_pb2.LogFilter]:
        while (item := await self._filters.get()) is not None:
            yield item

    async def _read(self) -> None:
        async for response in self._call:
            self.entries.extend(response.entries)
            self._changed.set()

    @property
    def messages(self) -> list[str]:
        return [e.message for e in self.entries]

    async def until(self, count: int, timeout_s: float = 30.0) -> None:
        async with asyncio.timeout(timeout_s):
            while len(self.entries) < count:
                self._changed.clear()
                await self._changed.wait()

    async def close(self) -> None:
        self._call.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


async def test_a_reading_recorded_on_a_is_served_and_watched_on_b(replicas) -> None:
    a, b = replicas
    watch = b.sensors.WatchSummaries(sensors_pb2.WatchSummariesRequest(sensor_ids=["s1"]))
    reply = await _record(a, _reading("r1", "s1", 21.5, 1))
    assert (reply.accepted, reply.duplicates) == (1, 0)
    summary = await b.sensors.GetSummary(sensors_pb2.GetSummaryRequest(sensor_id="s1"))
    assert (summary.readings_total, summary.avg_temperature) == (1, 21.5)
    async with asyncio.timeout(30):
        watched = await anext(aiter(watch))
    assert (watched.sensor_id, watched.readings_total, watched.avg_temperature) == ("s1", 1, 21.5)
    watch.cancel()
    again = await _record(b, _reading("r1", "s1", 21.5, 1))
    assert (again.accepted, again.duplicates) == (0, 1), "a retry on B is a duplicate"


async def test_entries_ingested_on_a_reach_a_monitor_on_b_in_order(replicas) -> None:
    a, b = replicas
    await _ingest(a, _batch("b1", "one", "two"))
    monitor = Monitor(b, logs_pb2.LogFilter(backlog=10, sources=["web-1"]))
    await monitor.until(2)  # the backlog, stored by A
    await _ingest(a, _batch("b2", "three"), _batch("b3", "four", "five"))
    await _ingest(b, _batch("b4", "six"))
    await monitor.until(6)  # live, from both replicas
    assert monitor.messages == ["one", "two", "three", "four", "five", "six"]
    sequences = [e.sequence for e in monitor.entries]
    assert sequences == sorted(sequences)
    await monitor.close()


async def test_a_batch_retried_on_b_after_a_applied_it_is_a_duplicate(replicas) -> None:
    a, b = replicas
    first = await _ingest(a, _batch("retry-me", "x", "y"))
    assert (first.accepted, first.duplicate_batches) == (2, 0)
    retry = await _ingest(b, _batch("retry-me", "x", "y"))
    assert (retry.accepted, retry.duplicate_batches) == (0, 1)


async def test_kill_9_of_both_loses_nothing_acknowledged(cluster) -> None:
    a, b = cluster()
    await _start(a, b)
    readings = [_reading(f"r{i}", f"s{i % 3}", 20.0 + i, i) for i in range(30)]
    batches = [_batch(f"batch-{i}", f"entry-{i}-0", f"entry-{i}-1") for i in range(10)]
    for i, reading in enumerate(readings):
        assert (await _record(a if i % 2 else b, reading)).accepted == 1
    for i, batch in enumerate(batches):
        assert (await _ingest(b if i % 2 else a, batch)).accepted == 2
    await a.kill9()
    await b.kill9()
    await _start(a, b)
    totals = [
        (
            await r.sensors.GetSummary(sensors_pb2.GetSummaryRequest(sensor_id=f"s{i}"))
        ).readings_total
        for r in (a, b)
        for i in range(3)
    ]
    assert totals == [10, 10, 10, 10, 10, 10]
    monitor = Monitor(b, logs_pb2.LogFilter(backlog=100))
    await monitor.until(20)
    assert monitor.messages == [f"entry-{i}-{j}" for i in range(10) for j in range(2)]
    await monitor.close()
    assert (await _ingest(a, batches[3])).duplicate_batches == 1
    assert (await _ingest(b, batches[4])).duplicate_batches == 1
    assert (await _record(b, readings[5])).duplicates == 1
    await a.stop()
    await b.stop()


async def _health(replica: Replica, service: str) -> int:
    stub = health_pb2_grpc.HealthStub(replica.channel)
    reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
    return reply.status


async def _failure(attempt: Callable, replica: Replica) -> grpc.aio.AioRpcError | None:
    try:
        await attempt(replica)
    except grpc.aio.AioRpcError as error:
        return error
    return None


async def _recovered(replicas: tuple[Replica, ...], attempt: Callable) -> float:
    """Seconds until ``attempt`` succeeds on every replica and each is ready."""
    start = time.monotonic()
    async with asyncio.timeout(60):
        for replica in replicas:
            while (failure := await _failure(attempt, replica)) is not None:
                # Until it heals, the only answer is UNAVAILABLE.
                assert failure.code() == grpc.StatusCode.UNAVAILABLE, failure.details()
                await asyncio.sleep(0.05)
            await replica.until_ready()
    return time.monotonic() - start


async def test_postgresql_down_10s_is_unavailable_then_heals(replicas, engines: Engines) -> None:
    a, b = replicas
    await _record(a, _reading("before", "s1", 20.0, 1))
    await asyncio.to_thread(engines.stop_postgresql)
    try:
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await _record(a, _reading("during", "s1", 21.0, 2))
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "sensor database unreachable" in error.value.details()
        assert "retrying them with the same ids is safe" in error.value.details()
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await b.sensors.GetSummary(sensors_pb2.GetSummaryRequest(sensor_id="s1"))
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE
        await asyncio.sleep(OUTAGE_S)
        for replica in (a, b):
            status, body = await asyncio.to_thread(replica.readyz)
            assert (status, body["checks"]["sensor_store"]) == (503, False), replica.name
            assert await _health(replica, "pulse.v1.SensorService") == 2  # NOT_SERVING
            assert await _health(replica, "pulse.v1.LogService") == 1, "logs still serve"
            assert replica.alive
        # Logs do not depend on the database.
        assert (await _ingest(a, _batch("while-db-down", "x"))).accepted == 1
    finally:
        await asyncio.to_thread(engines.start_postgresql)
    recovery = await _recovered(
        (a, b), lambda r: r.sensors.GetSummary(sensors_pb2.GetSummaryRequest(sensor_id="s1"))
    )
    print(f"\nrecovery after PostgreSQL came back: {recovery:.2f} s for both replicas")
    assert (await _record(a, _reading("during", "s1", 21.0, 2))).accepted == 1
    summary = await b.sensors.GetSummary(sensors_pb2.GetSummaryRequest(sensor_id="s1"))
    assert summary.readings_total == 2


async def test_nats_down_10s_is_unavailable_then_heals(replicas, engines: Engines) -> None:
    a, b = replicas
    # The backlog covers a batch that reaches B before the filter does.
    monitor = Monitor(b, logs_pb2.LogFilter(backlog=10))
    await _ingest(a, _batch("before", "before"))
    await monitor.until(1)
    await asyncio.to_thread(engines.stop_nats)
    try:
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await _ingest(a, _batch("during", "during"))
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "log bus" in error.value.details()
        assert "retry it with the same batch_id" in error.value.details()
        await asyncio.sleep(OUTAGE_S)
        for replica in (a, b):
            status, body = await asyncio.to_thread(replica.readyz)
            assert (status, body["checks"]["log_bus"]) == (503, False), replica.name
            assert await _health(replica, "pulse.v1.LogService") == 2  # NOT_SERVING
            assert replica.alive
        assert (await _record(b, _reading("while-bus-down", "s1", 20.0, 1))).accepted == 1
    finally:
        await asyncio.to_thread(engines.start_nats)
    recovery = await _recovered((a, b), lambda r: _ingest(r, _batch("during", "during")))
    print(f"\nrecovery after NATS came back: {recovery:.2f} s for both replicas")
    # The batch was retried on both: stored once, and B's Monitor, open all along, resumed.
    await _ingest(b, _batch("after", "after"))
    await monitor.until(3)
    assert monitor.messages == ["before", "during", "after"]
    await monitor.close()
