"""SensorService over a real channel: validation, idempotency, persistence, watchers."""

from __future__ import annotations

import asyncio
import math

import grpc
import pytest

from helpers import metric_points, metric_total
from pulse.sensor_service.window import Window
from pulse.v1 import sensors_pb2, sensors_pb2_grpc


def reading(rid: str, sensor: str, temperature: float, seconds: int | None = None):
    message = sensors_pb2.Reading(id=rid, sensor_id=sensor, temperature=temperature)
    if seconds is not None:
        message.time.FromSeconds(1_700_000_000 + seconds)
    return message


async def record(stub, *readings) -> sensors_pb2.RecordResponse:
    return await stub.Record(iter(readings))


def test_window_orders_by_reading_time_and_keeps_the_newest() -> None:
    window = Window("s", capacity=3)
    for t, v in ((5, 50.0), (1, 10.0), (3, 30.0), (4, 40.0)):
        window.add(t, v)
    s = window.summary()
    assert (s.min, s.max, s.size, s.newest_ns, s.total) == (30.0, 50.0, 3, 5, 4)
    assert window.add(0, -100.0) is False  # older than the whole window: counted, not kept
    assert window.summary().min == 30.0
    assert window.summary().total == 5


async def test_record_then_get_summary(pulse_server) -> None:
    srv = await pulse_server(sensors={"window": 3})
    stub = sensors_pb2_grpc.SensorServiceStub(srv.channel)
    reply = await record(stub, *(reading(f"r{i}", "s1", 20.0 + i, i) for i in range(5)))
    assert (reply.accepted, reply.duplicates, reply.rejected) == (5, 0, 0)
    summary = await stub.GetSummary(sensors_pb2.GetSummaryRequest(sensor_id="s1"))
    assert (summary.min_temperature, summary.max_temperature) == (22.0, 24.0)
    assert summary.avg_temperature == pytest.approx(23.0)
    assert (summary.window_size, summary.readings_total) == (3, 5)
    assert summary.time.seconds == 1_700_000_004


async def test_invalid_readings_are_rejected_and_the_call_goes_on(pulse_server) -> None:
    srv = await pulse_server()
    stub = sensors_pb2_grpc.SensorServiceStub(srv.channel)
    future = sensors_pb2.Reading(id="f", sensor_id="s", temperature=1.0)
    future.time.FromSeconds(4_000_000_000)
    reply = await record(
        stub,
        reading("", "s", 1.0),
        reading("a", "", 1.0),
        reading("b", "s", math.nan),
        reading("c", "s", math.inf),
        reading("d", "s", 500.0),
        reading("e", "s" * 200, 1.0),
        future,
        reading("ok", "s", 21.0),
    )
    assert (reply.accepted, reply.rejected) == (1, 7)
    assert (
        metric_total(srv.telemetry, "pulse.sensor.readings", **{"pulse.sensor.outcome": "rejected"})
        == 7
    )


async def test_duplicates_never_count_twice_even_after_restart(pulse_server) -> None:
    srv = await pulse_server()
    stub = sensors_pb2_grpc.SensorServiceStub(srv.channel)
    assert (await record(stub, reading("r1", "s1", 10.0, 1))).accepted == 1
    again = await record(stub, reading("r1", "s1", 99.0, 1), reading("r2", "s1", 30.0, 2))
    assert (again.accepted, again.duplicates) == (1, 1)
    await srv.server.stop(grace=0.5)
    restarted = await pulse_server()  # same data_dir, so the same database
    stub = sensors_pb2_grpc.SensorServiceStub(restarted.channel)
    summary = await stub.GetSummary(sensors_pb2.GetSummaryRequest(sensor_id="s1"))
    assert (summary.min_temperature, summary.max_temperature, summary.readings_total) == (
        10.0,
        30.0,
        2,
    )
    after = await record(stub, reading("r2", "s1", 0.0, 3))
    assert after.duplicates == 1


async def test_get_summary_errors(pulse_server) -> None:
    srv = await pulse_server()
    stub = sensors_pb2_grpc.SensorServiceStub(srv.channel)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.GetSummary(sensors_pb2.GetSummaryRequest(sensor_id="ghost"))
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    assert "ghost" in error.value.details()
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.GetSummary(sensors_pb2.GetSummaryRequest())
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_watch_sends_snapshot_then_updates_of_selected_sensors(pulse_server) -> None:
    srv = await pulse_server()
    stub = sensors_pb2_grpc.SensorServiceStub(srv.channel)
    await record(stub, reading("a1", "a", 1.0, 1), reading("b1", "b", 2.0, 1))
    everything = stub.WatchSummaries(sensors_pb2.WatchSummariesRequest())
    only_b = stub.WatchSummaries(sensors_pb2.WatchSummariesRequest(sensor_ids=["b", "later"]))
    snapshot = {(await everything.read()).sensor_id, (await everything.read()).sensor_id}
    assert snapshot == {"a", "b"}
    assert (await only_b.read()).sensor_id == "b"
    await record(stub, reading("l1", "later", 5.0, 2), reading("a2", "a", 3.0, 2))
    update = await asyncio.wait_for(only_b.read(), 10)
    assert (update.sensor_id, update.max_temperature) == ("later", 5.0)
    seen = {(await asyncio.wait_for(everything.read(), 10)).sensor_id for _ in range(2)}
    assert seen == {"later", "a"}
    everything.cancel()
    only_b.cancel()


async def test_watch_limit_validation_and_cleanup(pulse_server) -> None:
    srv = await pulse_server(sensors={"max_watchers": 1})
    stub = sensors_pb2_grpc.SensorServiceStub(srv.channel)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.WatchSummaries(sensors_pb2.WatchSummariesRequest(sensor_ids=[""])).read()
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    first = stub.WatchSummaries(sensors_pb2.WatchSummariesRequest())
    await record(stub, reading("x", "x", 1.0))
    await first.read()
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.WatchSummaries(sensors_pb2.WatchSummariesRequest()).read()
    assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    first.cancel()
    watchers = srv.server.components[2].servicer.watchers
    for _ in range(100):
        if not len(watchers):
            break
        await asyncio.sleep(0.02)
    assert len(watchers) == 0


async def test_temperature_gauge_bounds_its_sensor_label(pulse_server) -> None:
    srv = await pulse_server(sensors={"max_labelled_sensors": 2})
    stub = sensors_pb2_grpc.SensorServiceStub(srv.channel)
    await record(stub, *(reading(f"r{i}", f"s{i}", 20.0 + i) for i in range(4)))
    # Shared state exports summaries from its change feed, after Record has returned.
    labels: set[str] = set()
    for _ in range(200):
        points = metric_points(srv.telemetry, "pulse.sensor.temperature")
        labels |= {a["pulse.sensor.id"] for a, _ in points}
        if "other" in labels:
            break
        await asyncio.sleep(0.05)
    assert labels == {"s0", "s1", "other"}
    spans = [s.name for s in srv.telemetry.span_exporter.get_finished_spans()]
    assert spans.count("sensor.record") == 4


async def test_times_the_store_cannot_hold_are_rejected_and_the_stream_goes_on(
    pulse_server,
) -> None:
    srv = await pulse_server()
    stub = sensors_pb2_grpc.SensorServiceStub(srv.channel)
    early = sensors_pb2.Reading(id="early", sensor_id="s", temperature=1.0)
    early.time.seconds = -9_300_000_000  # 1675: below SQLite's signed 64-bit nanoseconds
    nanos = sensors_pb2.Reading(id="nanos", sensor_id="s", temperature=1.0)
    nanos.time.seconds, nanos.time.nanos = 1_700_000_000, -5
    reply = await record(stub, early, nanos, reading("ok", "s", 21.0, 5))
    assert (reply.accepted, reply.rejected) == (1, 2)
    assert (
        metric_total(srv.telemetry, "pulse.sensor.readings", **{"pulse.sensor.outcome": "rejected"})
        == 2
    )


async def test_readiness_asks_the_database(pulse_server) -> None:
    import json
    import urllib.error
    import urllib.request

    srv = await pulse_server()

    def readyz() -> tuple[int, dict]:
        try:
            with urllib.request.urlopen(f"{srv.admin_url}/readyz", timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    assert (await asyncio.to_thread(readyz))[0] == 200
    await srv.break_sensor_database()
    status, body = await asyncio.to_thread(readyz)
    assert status == 503
    assert body["checks"]["sensor_store"] is False


async def test_a_quiet_watch_still_ticks_under_its_stream_span(pulse_server) -> None:
    srv = await pulse_server()  # stream_tick_s is 0.2 in tests
    stub = sensors_pb2_grpc.SensorServiceStub(srv.channel)
    call = stub.WatchSummaries(sensors_pb2.WatchSummariesRequest(sensor_ids=["nobody"]))
    exporter = srv.telemetry.span_exporter
    ticks = []
    for _ in range(100):
        ticks = [s for s in exporter.get_finished_spans() if s.name == "sensors.watch.tick"]
        if len(ticks) >= 2:
            break
        await asyncio.sleep(0.05)
    assert len(ticks) >= 2, "no summary arrived, yet the stream shows in traces"
    stream = [s for s in exporter.get_finished_spans() if s.kind.name == "SERVER"]
    assert not [s for s in stream if s.name.endswith("WatchSummaries")], "still open"
    assert ticks[0].parent is not None
    assert ticks[0].context.trace_id == ticks[1].context.trace_id
    assert ticks[0].parent.span_id == ticks[1].parent.span_id
    call.cancel()
    for _ in range(100):
        ended = [
            s
            for s in exporter.get_finished_spans()
            if s.name.endswith("SensorService/WatchSummaries")
        ]
        if ended:
            break
        await asyncio.sleep(0.05)
    assert ended[0].context.span_id == ticks[0].parent.span_id
