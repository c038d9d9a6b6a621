"""LogService under hostile or unlucky clients: every field bounded by bytes, responses split
by size, filter floods refused, idle calls ended, bad times rejected, batch ids remembered only
for what was applied."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from test_log_service import Monitor, entry, ingest

from helpers import metric_total
from pulse.config import ConfigError, load
from pulse.v1 import logs_pb2, logs_pb2_grpc

MiB = 1024 * 1024


def _rejected(telemetry) -> float:
    return metric_total(telemetry, "pulse.ingest.entries", **{"pulse.ingest.outcome": "rejected"})


def _servicer(srv):
    return srv.server.components[1].servicer


async def test_oversized_fields_are_rejected_or_cut_and_never_kept(pulse_server) -> None:
    srv = await pulse_server()
    stub = logs_pb2_grpc.LogServiceStub(srv.channel)
    big = "v" * (150 * 1024)
    reply = await ingest(
        stub,
        logs_pb2.IngestRequest(
            entries=[
                entry("source", source=big),
                entry("task", task_id=big),
                entry("key", attributes={big: "v"}),
                entry("trace", trace_id="a" * 33),
                entry("value", attributes={"k": big}),
                entry("message " + big),
            ]
        ),
    )
    assert (reply.accepted, reply.rejected, reply.truncated) == (2, 4, 2)
    assert _rejected(srv.telemetry) == 4
    s = srv.settings.ingest
    servicer = _servicer(srv)
    assert servicer.buffer.bytes < 2 * (s.max_entry_bytes + 512)
    limiter = servicer.pipeline.limiter
    assert limiter.sources.bytes < 1024, "a rejected source never reaches the rate limiter"


async def test_a_long_batch_id_ends_the_call_and_is_not_remembered(pulse_server) -> None:
    srv = await pulse_server()
    stub = logs_pb2_grpc.LogServiceStub(srv.channel)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await ingest(stub, logs_pb2.IngestRequest(batch_id="b" * 257, entries=[entry("a")]))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "batch_id: longer than 256 bytes" in error.value.details()
    assert len(_servicer(srv).dedup) == 0


async def test_ring_dedup_and_limiter_are_bounded_by_bytes(pulse_server) -> None:
    srv = await pulse_server(
        monitor={"buffer_bytes": MiB},
        ingest={"dedup_max_bytes": 64 * 1024, "max_tracked_key_bytes": 64 * 1024},
    )
    stub = logs_pb2_grpc.LogServiceStub(srv.channel)
    payload = "p" * 8000
    for i in range(40):
        batch = [entry(payload, source=f"source-{i}-{j}-" + "s" * 200) for j in range(20)]
        await ingest(stub, logs_pb2.IngestRequest(batch_id=f"{i}-" + "i" * 250, entries=batch))
    servicer = _servicer(srv)
    assert servicer.buffer.bytes <= MiB
    assert len(servicer.buffer) < 800, "the byte bound, not the entry count, limits the ring"
    assert servicer.dedup.bytes <= 64 * 1024
    assert servicer.pipeline.limiter.sources.bytes <= 64 * 1024


async def test_monitor_responses_are_split_by_size(pulse_server) -> None:
    limit = 64 * 1024
    srv = await pulse_server(
        monitor={"max_response_bytes": limit},
        ingest={"max_message_bytes": 8192, "max_attribute_value_bytes": 1024},
    )
    stub = logs_pb2_grpc.LogServiceStub(srv.channel)
    attributes = {f"k{i}": "a" * 1024 for i in range(32)}  # about 41 KB per entry
    await ingest(
        stub,
        logs_pb2.IngestRequest(
            entries=[entry("m" * 8192, attributes=attributes) for _ in range(6)]
        ),
    )
    monitor = Monitor(stub)
    await monitor.send(logs_pb2.LogFilter(backlog=6))
    received = 0
    while received < 6:
        response = await monitor.read()
        assert response.ByteSize() <= limit + 1024
        received += len(response.entries)
    await monitor.close()


def test_no_entry_can_be_accepted_that_cannot_be_delivered() -> None:
    with pytest.raises(ConfigError, match=r"monitor\.max_response_bytes"):
        load(
            overrides={
                "ingest": {"max_attributes": 64, "max_attribute_value_bytes": 4096},
                "monitor": {"max_response_bytes": 128 * 1024},
            }
        )


async def _read_until_the_end(monitor: Monitor) -> None:
    while True:
        await monitor.read()


async def test_a_flood_of_filter_updates_is_refused(pulse_server) -> None:
    srv = await pulse_server(monitor={"filter_update_rate": 1, "filter_update_burst": 3})
    stub = logs_pb2_grpc.LogServiceStub(srv.channel)
    monitor = Monitor(stub)
    for i in range(4):  # one more than the burst
        await monitor.send(logs_pb2.LogFilter(pattern=f"p{i}", backlog=100))
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await _read_until_the_end(monitor)
    assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "monitor.filter_update_rate" in error.value.details()
    applied = metric_total(
        srv.telemetry, "pulse.monitor.filter.updates", **{"pulse.monitor.filter.outcome": "applied"}
    )
    assert applied == 3


async def test_too_many_attributes_are_rejected_before_any_work_on_them(pulse_server) -> None:
    srv = await pulse_server()
    stub = logs_pb2_grpc.LogServiceStub(srv.channel)
    many = entry("many", attributes={f"k{i}": "password=x" for i in range(20_000)})
    reply = await ingest(stub, logs_pb2.IngestRequest(entries=[many, entry("fine")]))
    assert (reply.accepted, reply.rejected, reply.redacted) == (1, 1, 0)


async def test_a_monitor_call_is_a_subscriber_before_its_first_filter(pulse_server) -> None:
    srv = await pulse_server(monitor={"max_subscribers": 1})
    stub = logs_pb2_grpc.LogServiceStub(srv.channel)
    silent = Monitor(stub)  # opens, sends nothing
    for _ in range(100):
        if _servicer(srv).monitor_calls == 1:
            break
        await asyncio.sleep(0.02)
    second = Monitor(stub)
    await second.send(logs_pb2.LogFilter())
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await second.read()
    assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert metric_total(srv.telemetry, "pulse.monitor.subscribers") == 1
    silent.call.cancel()


async def test_idle_calls_are_ended_and_free_their_place(pulse_server) -> None:
    srv = await pulse_server(
        ingest={"idle_timeout_s": 0.3, "max_streams": 1}, monitor={"first_filter_timeout_s": 0.3}
    )
    stub = logs_pb2_grpc.LogServiceStub(srv.channel)
    gate = asyncio.Event()

    async def silent() -> AsyncIterator[logs_pb2.IngestRequest]:
        await gate.wait()
        yield logs_pb2.IngestRequest()

    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.Ingest(silent(), timeout=10)
    assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "ingest.idle_timeout_s" in error.value.details()
    assert (await ingest(stub, logs_pb2.IngestRequest(entries=[entry("next")]))).accepted == 1
    monitor = Monitor(stub)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await monitor.read()
    assert "monitor.first_filter_timeout_s" in error.value.details()
    gate.set()


def _at(seconds: int, nanos: int = 0) -> Timestamp:
    return Timestamp(seconds=seconds, nanos=nanos)


async def test_times_outside_the_range_are_rejected_counted_and_never_delivered(
    pulse_server,
) -> None:
    srv = await pulse_server()
    stub = logs_pb2_grpc.LogServiceStub(srv.channel)
    bad = [
        entry("before 1970", time=_at(-1)),
        entry("year 10000", time=_at(253_402_300_800)),
        entry("nanos", time=_at(1_700_000_000, 1_000_000_000)),
        entry("after 2262", time=_at(2**63 // 10**9 + 1)),
    ]
    reply = await ingest(stub, logs_pb2.IngestRequest(entries=[*bad, entry("ok", time=_at(1))]))
    assert (reply.accepted, reply.rejected) == (1, 4)
    monitor = Monitor(stub)
    await monitor.send(logs_pb2.LogFilter(backlog=10))
    [(_, delivered)] = await monitor.entries(1)
    assert delivered.message == "ok"
    await monitor.close()


async def test_a_batch_with_nothing_applied_keeps_its_id_free_for_the_retry(pulse_server) -> None:
    srv = await pulse_server(ingest={"source_rate": 0.001, "source_burst": 1})
    stub = logs_pb2_grpc.LogServiceStub(srv.channel)
    await ingest(stub, logs_pb2.IngestRequest(entries=[entry("drains the bucket")]))
    limited = logs_pb2.IngestRequest(batch_id="retry-me", entries=[entry("later")])
    first = await ingest(stub, limited)
    assert (first.accepted, first.rate_limited) == (0, 1)
    invalid = logs_pb2.IngestRequest(batch_id="invalid", entries=[entry("x", source="")])
    assert (await ingest(stub, invalid)).rejected == 1
    servicer = _servicer(srv)
    assert not servicer.dedup.seen("retry-me")
    assert not servicer.dedup.seen("invalid")
    servicer.pipeline.limiter.sources.get("web-1", 0).tokens = 1  # the limit has passed
    retried = await ingest(stub, limited)
    assert (retried.accepted, retried.duplicate_batches) == (1, 0)
    again = await ingest(stub, limited)
    assert (again.accepted, again.duplicate_batches) == (0, 1)
