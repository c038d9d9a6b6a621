"""The two sensor states behind one protocol: embedded (SQLite and memory) and shared
(PostgreSQL, here two replicas on one real server): ids inserted once, summaries of the newest
readings by reading time, every summary handed to every replica's listeners, migrations safe
when replicas start at once, an outage answered with StateUnavailable and healed without a
restart."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest
from opentelemetry.semconv.attributes import db_attributes as da
from opentelemetry.semconv.attributes import error_attributes as ea

from helpers import metric_points
from pulse.sensor_service.embedded import EmbeddedSensorState
from pulse.sensor_service.migrations import MIGRATIONS, TABLE
from pulse.sensor_service.postgres import LISTENER_NAME, PostgresSensorState
from pulse.sensor_service.state import SensorState, StateUnavailable
from pulse.sensor_service.store import Reading
from pulse.sensor_service.window import Summary
from pulse.telemetry import Telemetry, build_test_telemetry
from shared_state import Engines, drop, fresh_database

WINDOW = 3
Factory = Callable[[], Awaitable[SensorState]]


async def _health(state: SensorState, healthy: bool = True, timeout_s: float = 30.0) -> None:
    """Wait until the state's readiness is ``healthy``."""
    async with asyncio.timeout(timeout_s):
        while True:
            if await state.healthy() == healthy:
                return
            await asyncio.sleep(0.02)


class Collected:
    """What a listener was handed, with a way to wait for it."""

    def __init__(self, state: SensorState) -> None:
        self.summaries: list[Summary] = []
        self._changed = asyncio.Event()
        state.listen(self._add)

    def _add(self, summary: Summary) -> None:
        self.summaries.append(summary)
        self._changed.set()

    async def until(self, check: Callable[[list[Summary]], bool], timeout_s: float = 10.0):
        async with asyncio.timeout(timeout_s):
            while not check(self.summaries):
                self._changed.clear()
                await self._changed.wait()


@pytest.fixture
async def database(engines: Engines) -> AsyncIterator[str]:
    url = await fresh_database(engines)
    yield url
    await drop(engines, url, None)


@pytest.fixture
async def replicas(database: str) -> AsyncIterator[Callable[..., Awaitable[PostgresSensorState]]]:
    """Starts replicas of the shared state on one fresh database."""
    started: list[PostgresSensorState] = []

    async def start(
        telemetry: Telemetry | None = None, url: str | None = None, wait: bool = True
    ) -> PostgresSensorState:
        telemetry = telemetry or build_test_telemetry()
        state = PostgresSensorState(
            url or database, WINDOW, telemetry.tracer, telemetry.meter, timeout_s=2.0
        )
        await state.start()
        started.append(state)
        if wait:
            await _health(state)
        return state

    yield start
    for state in started:
        await state.stop()


@pytest.fixture(params=["embedded", "postgresql"])
async def state(
    request: pytest.FixtureRequest, tmp_path: Path, replicas
) -> AsyncIterator[SensorState]:
    if request.param == "embedded":
        embedded = EmbeddedSensorState(tmp_path / "sensors.db", WINDOW)
        await embedded.start()
        yield embedded
        await embedded.stop()
    else:
        yield await replicas()


def _reading(rid: str, sensor: str, t: int, value: float) -> Reading:
    return Reading(rid, sensor, t * 1_000_000_000, value)


async def test_a_reading_is_inserted_once_by_id(state: SensorState) -> None:
    collected = Collected(state)
    assert await state.record(_reading("r1", "s1", 1, 20.0)) is True
    assert await state.record(_reading("r1", "s1", 2, 99.0)) is False
    await collected.until(lambda s: len(s) >= 1)
    summary = await state.summary("s1")
    assert summary == Summary("s1", 20.0, 20.0, 20.0, 1, 1_000_000_000, 1)
    assert await state.summary("unknown") is None


async def test_the_summary_covers_the_newest_readings_by_reading_time(state: SensorState) -> None:
    collected = Collected(state)
    # Arrival order differs from reading time; the window keeps the 3 newest by time.
    for rid, t, value in [("a", 5, 10.0), ("b", 1, 90.0), ("c", 4, 12.0), ("d", 6, 14.0)]:
        assert await state.record(_reading(rid, "s1", t, value))
    await collected.until(lambda s: len(s) == 4)
    summary = await state.summary("s1")
    assert summary == Summary("s1", 10.0, 14.0, 12.0, 3, 6_000_000_000, 4)
    assert collected.summaries[-1] == summary
    assert [s.size for s in collected.summaries] == [1, 2, 3, 3]


async def test_summaries_of_some_or_all_sensors(state: SensorState) -> None:
    for i, sensor in enumerate(["s1", "s2", "s3"]):
        await state.record(_reading(f"r{i}", sensor, i, 20.0 + i))
    assert {s.sensor_id for s in await state.summaries()} == {"s1", "s2", "s3"}
    assert {s.sensor_id for s in await state.summaries(["s2", "s9"])} == {"s2"}


async def test_a_reading_on_one_replica_reaches_the_other_replicas_listeners(replicas) -> None:
    a, b = await replicas(), await replicas()
    on_b = Collected(b)
    assert await a.record(_reading("r1", "s1", 1, 21.5))
    await on_b.until(lambda s: len(s) == 1)
    assert on_b.summaries[0] == Summary("s1", 21.5, 21.5, 21.5, 1, 1_000_000_000, 1)
    assert await b.summary("s1") == on_b.summaries[0]
    assert await b.record(_reading("r1", "s1", 1, 21.5)) is False, "a retry on B is a duplicate"


async def test_concurrent_readings_of_one_sensor_on_two_replicas_agree(replicas) -> None:
    a, b = await replicas(), await replicas()
    seen_a, seen_b = Collected(a), Collected(b)
    readings = [_reading(f"r{i}", "s1", i, float(i)) for i in range(40)]
    await asyncio.gather(
        *((a if i % 2 else b).record(reading) for i, reading in enumerate(readings))
    )
    final = Summary("s1", 37.0, 39.0, 38.0, WINDOW, 39_000_000_000, 40)
    assert await a.summary("s1") == final
    # The last summary each replica was handed is the final one: none missed a reading
    # committed by the other while it held the sensor's row.
    await seen_a.until(lambda s: s and s[-1] == final)
    await seen_b.until(lambda s: s and s[-1] == final)
    totals = [s.total for s in seen_b.summaries]
    assert totals == sorted(totals), "a listener is never handed an older summary after a newer"


async def test_replicas_starting_at_once_migrate_once(replicas, database: str) -> None:
    started = await asyncio.gather(*(replicas() for _ in range(4)))
    assert all([await s.healthy() for s in started])
    connection = await asyncpg.connect(database)
    try:
        rows = await connection.fetch(f"SELECT version FROM {TABLE}")
    finally:
        await connection.close()
    assert sorted(r["version"] for r in rows) == [m[0] for m in MIGRATIONS]
    # A restart on a migrated database applies nothing and keeps the data.
    await started[0].record(_reading("r1", "s1", 1, 20.0))
    again = await replicas()
    assert (await again.summary("s1")).total == 1


async def test_an_unreachable_database_is_unavailable_until_it_is_reached(replicas) -> None:
    nowhere = "postgresql://pulse:x@127.0.0.1:9/pulse"  # the discard port: nothing listens
    state = await replicas(url=nowhere, wait=False)
    with pytest.raises(StateUnavailable, match="sensor database not reached yet"):
        await state.record(_reading("r1", "s1", 1, 20.0))
    assert not await state.healthy()


async def test_a_lost_listener_reconnects_and_catches_up(
    replicas, engines: Engines, database: str
) -> None:
    a, b = await replicas(), await replicas()
    on_b = Collected(b)
    assert await a.summary("s1") is None  # A now holds a pooled connection
    name = database.rsplit("/", 1)[1]
    admin = await asyncpg.connect(engines.postgresql_url("postgres"))
    try:
        # No new connection to the database, and none listening: B cannot hear A's reading.
        await admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = $1 AND application_name = $2",
            name,
            LISTENER_NAME,
        )
        await _health(b, healthy=False, timeout_s=10)
        await a.record(_reading("r1", "s1", 1, 20.0))
        await asyncio.sleep(0.5)  # B's reconnects are refused meanwhile
        assert on_b.summaries == []
        await admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
    finally:
        await admin.close()
    await on_b.until(lambda s: len(s) == 1, timeout_s=20)
    assert on_b.summaries == [await a.summary("s1")]
    await _health(b)


async def test_database_calls_are_traced_and_measured(replicas) -> None:
    telemetry = build_test_telemetry()
    state = await replicas(telemetry)
    await state.record(_reading("r1", "s1", 1, 20.0))
    spans = [s for s in telemetry.span_exporter.get_finished_spans() if s.name.startswith("SELECT")]
    record = next(s for s in spans if s.name == "SELECT pulse_record_reading")
    assert record.attributes[da.DB_SYSTEM_NAME] == "postgresql"
    assert record.attributes[da.DB_OPERATION_NAME] == "SELECT"
    points = dict(
        (attrs[da.DB_COLLECTION_NAME], point)
        for attrs, point in metric_points(telemetry, "db.client.operation.duration")
        if ea.ERROR_TYPE not in attrs
    )
    assert points["pulse_record_reading"].count == 1


async def test_a_database_outage_is_unavailable_then_heals_without_a_restart(
    replicas, engines: Engines
) -> None:
    state = await replicas()
    on_state = Collected(state)
    await state.record(_reading("r1", "s1", 1, 20.0))
    await asyncio.to_thread(engines.stop_postgresql)
    try:
        with pytest.raises(StateUnavailable, match="sensor database unreachable"):
            await state.record(_reading("r2", "s1", 2, 21.0))
        await _health(state, healthy=False, timeout_s=10)
    finally:
        await asyncio.to_thread(engines.start_postgresql)
    await _health(state)
    assert await state.record(_reading("r2", "s1", 2, 21.0)) is True
    await on_state.until(lambda s: s and s[-1].total == 2)
    assert (await state.summary("s1")).total == 2
