"""The log bus on a real NATS JetStream server, two replicas on one stream: a batch stored once
by its id whichever replica sends it, one order of entries for every reader, the stored entries
read back after a restart, an outage answered with BusUnavailable and healed without a
restart."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import nats
import pytest
from opentelemetry.semconv._incubating.attributes import messaging_attributes as ma

from helpers import metric_points
from pulse.log_service.bus import REPLAYED, BusUnavailable
from pulse.log_service.jetstream import SEQUENCE_STRIDE, JetStreamBus
from pulse.telemetry import Telemetry, build_test_telemetry
from pulse.v1 import common_pb2, logs_pb2
from shared_state import Engines, drop, fresh_stream

DEDUP_WINDOW_S = 120.0


class Reader:
    """What one replica's bus delivered: (entry, accepted) in order."""

    def __init__(self) -> None:
        self.delivered: list[tuple[logs_pb2.LogEntry, float]] = []
        self._changed = asyncio.Event()

    def __call__(self, entries: list[logs_pb2.LogEntry], accepted: float) -> None:
        self.delivered.extend((entry, accepted) for entry in entries)
        self._changed.set()

    @property
    def messages(self) -> list[str]:
        return [entry.message for entry, _ in self.delivered]

    @property
    def sequences(self) -> list[int]:
        return [entry.sequence for entry, _ in self.delivered]

    async def until(self, count: int, timeout_s: float = 15.0) -> None:
        async with asyncio.timeout(timeout_s):
            while len(self.delivered) < count:
                self._changed.clear()
                await self._changed.wait()


async def _health(bus: JetStreamBus, healthy: bool = True, timeout_s: float = 30.0) -> None:
    async with asyncio.timeout(timeout_s):
        while True:
            if await bus.healthy() == healthy:
                return
            await asyncio.sleep(0.02)


def _entries(*messages: str) -> list[logs_pb2.LogEntry]:
    return [
        logs_pb2.LogEntry(message=m, source="web-1", severity=common_pb2.SEVERITY_INFO)
        for m in messages
    ]


@pytest.fixture
def stream() -> str:
    return fresh_stream()


@pytest.fixture
async def replicas(
    engines: Engines, stream: str
) -> AsyncIterator[Callable[..., Awaitable[tuple[JetStreamBus, Reader]]]]:
    started: list[JetStreamBus] = []

    async def start(
        telemetry: Telemetry | None = None,
        url: str | None = None,
        wait: bool = True,
        **options,
    ) -> tuple[JetStreamBus, Reader]:
        telemetry = telemetry or build_test_telemetry()
        reader = Reader()
        settings = {
            "stream": stream,
            "subject": f"pulse.test.{stream}",
            "dedup_window_s": DEDUP_WINDOW_S,
            "max_age_s": 3600.0,
            "max_bytes": 64 * 1024 * 1024,
            "timeout_s": 2.0,
            **options,
        }
        bus = JetStreamBus(
            url or engines.nats_url, reader, telemetry.tracer, telemetry.meter, **settings
        )
        await bus.start()
        started.append(bus)
        if wait:
            await _health(bus)
        return bus, reader

    yield start
    for bus in started:
        await bus.stop()
    await drop(engines, None, stream)


async def test_a_batch_published_on_one_replica_reaches_both_in_order(replicas) -> None:
    (a, on_a), (_, on_b) = await replicas(), await replicas()
    assert await a.publish("batch-1", _entries("one", "two", "three")) is True
    await on_b.until(3)
    await on_a.until(3)
    assert on_b.messages == ["one", "two", "three"]
    first = on_b.sequences[0]
    assert first % SEQUENCE_STRIDE == 0
    assert on_b.sequences == [first, first + 1, first + 2]
    assert on_a.sequences == on_b.sequences
    assert all(accepted != REPLAYED for _, accepted in on_b.delivered), "live, not replayed"


async def test_a_retry_on_another_replica_is_a_duplicate(replicas) -> None:
    (a, on_a), (b, _) = await replicas(), await replicas()
    assert await a.publish("batch-1", _entries("one")) is True
    assert await b.publish("batch-1", _entries("one")) is False
    assert await a.publish("batch-1", _entries("one")) is False
    assert await b.publish("batch-2", _entries("two")) is True
    await on_a.until(2)
    await asyncio.sleep(0.3)
    assert on_a.messages == ["one", "two"], "a duplicate is stored once"


async def test_every_replica_is_told_the_ids_of_live_batches_only(replicas) -> None:
    (a, _), (b, _) = await replicas(), await replicas()
    assert await a.publish("before", _entries("one")) is True
    seen: list[str] = []
    (_, on_c) = await replicas(seen=seen.append)  # reads "before" back, replayed
    assert await b.publish("live", _entries("two")) is True
    await on_c.until(2)
    assert seen == ["live"]


async def test_batches_without_an_id_are_never_duplicates(replicas) -> None:
    (a, on_a) = await replicas()
    assert await a.publish("", _entries("one")) is True
    assert await a.publish("", _entries("one")) is True
    await on_a.until(2)


async def test_an_id_a_header_could_not_carry_is_still_one_batch(replicas) -> None:
    (a, on_a), (b, _) = await replicas(), await replicas()
    tricky = "id with spaces\r\nNats-Msg-Id: other"
    assert await a.publish(tricky, _entries("one")) is True
    assert await b.publish(tricky, _entries("one")) is False
    assert await b.publish("other", _entries("two")) is True, "no header injection"
    await on_a.until(2)


async def test_every_replica_reads_one_order(replicas) -> None:
    (a, on_a), (b, on_b) = await replicas(), await replicas()
    await asyncio.gather(
        *(
            (a if i % 2 else b).publish(f"batch-{i}", _entries(f"m{i}-0", f"m{i}-1"))
            for i in range(30)
        )
    )
    await on_a.until(60)
    await on_b.until(60)
    assert on_a.messages == on_b.messages
    assert on_a.sequences == sorted(on_a.sequences)
    assert len(set(on_a.sequences)) == 60


async def test_a_replica_started_later_reads_back_what_was_stored(replicas) -> None:
    (a, _) = await replicas()
    for i in range(5):
        await a.publish(f"batch-{i}", _entries(f"old-{i}"))
    (c, on_c) = await replicas(replay=3)
    await on_c.until(3)
    assert on_c.messages == ["old-2", "old-3", "old-4"], "the newest `replay` batches"
    assert all(accepted == REPLAYED for _, accepted in on_c.delivered)
    await a.publish("batch-new", _entries("new"))
    await on_c.until(4)
    assert on_c.delivered[-1][1] != REPLAYED
    assert await c.publish("batch-2", _entries("old-2")) is False, "ids outlive a restart"


async def test_the_stream_is_stored_on_file_with_the_configured_limits(
    replicas, engines: Engines, stream: str
) -> None:
    await replicas()
    await replicas()  # a second replica finds the stream and keeps it
    nc = await nats.connect(engines.nats_url)
    try:
        info = await nc.jetstream().stream_info(stream)
    finally:
        await nc.close()
    assert info.config.storage == "file"
    assert info.config.duplicate_window == DEDUP_WINDOW_S
    assert info.config.max_age == 3600.0
    assert info.config.max_bytes == 64 * 1024 * 1024


async def test_a_replica_joins_a_stream_that_holds_most_of_the_servers_storage(replicas) -> None:
    """JetStream reserves a stream's max_bytes whenever the stream is added, even when it exists
    already: adding it again from a second replica fails for storage once two reservations pass
    the server's max_file_store (2GB here, 1.5GB in the chart), so a replica that finds the
    stream must leave it as it is."""
    large = {"max_bytes": 1200 * 1024 * 1024}
    (_, on_a), (b, _) = await replicas(**large), await replicas(**large)
    assert await b.publish("batch-1", _entries("one")) is True
    await on_a.until(1)


async def test_an_unreachable_bus_is_unavailable_until_reached(replicas) -> None:
    (bus, _) = await replicas(url="nats://127.0.0.1:9", wait=False)
    with pytest.raises(BusUnavailable, match="log bus not reached yet"):
        await bus.publish("batch-1", _entries("one"))
    assert not await bus.healthy()


async def test_a_server_that_cannot_take_a_batch_is_named(replicas) -> None:
    (bus, _) = await replicas(wait=False, max_batch_bytes=16 * 1024 * 1024)
    await asyncio.sleep(1.0)
    assert not await bus.healthy()
    with pytest.raises(BusUnavailable, match="max_payload"):
        await bus.publish("batch-1", _entries("one"))


async def test_an_outage_is_unavailable_then_heals_without_a_restart(
    replicas, engines: Engines
) -> None:
    (a, on_a), (b, on_b) = await replicas(), await replicas()
    await a.publish("batch-1", _entries("before"))
    await on_b.until(1)
    await asyncio.to_thread(engines.stop_nats)
    try:
        with pytest.raises(BusUnavailable, match="log bus did not acknowledge"):
            await a.publish("batch-2", _entries("during"))
        await _health(a, healthy=False, timeout_s=10)
    finally:
        await asyncio.to_thread(engines.start_nats)
    await _health(a)
    await _health(b)
    # The batch whose outcome was unknown is retried with its id: stored once at most.
    await a.publish("batch-2", _entries("during"))
    assert await b.publish("batch-2", _entries("during")) is False
    await b.publish("batch-3", _entries("after"))
    await on_b.until(3, timeout_s=30)
    await on_a.until(3, timeout_s=30)
    assert on_b.messages == ["before", "during", "after"]
    assert on_a.messages == on_b.messages


async def test_publishes_are_traced_and_measured(replicas, stream: str) -> None:
    telemetry = build_test_telemetry()
    (bus, _) = await replicas(telemetry)
    await bus.publish("batch-1", _entries("one", "two"))
    subject = f"pulse.test.{stream}"
    span = next(
        s for s in telemetry.span_exporter.get_finished_spans() if s.name == f"publish {subject}"
    )
    assert span.attributes[ma.MESSAGING_SYSTEM] == "nats"
    assert span.attributes["pulse.bus.entries"] == 2
    assert span.attributes["pulse.bus.duplicate"] is False
    points = [
        point
        for attrs, point in metric_points(telemetry, "messaging.client.operation.duration")
        if attrs[ma.MESSAGING_OPERATION_NAME] == "publish"
    ]
    assert sum(p.count for p in points) == 1
