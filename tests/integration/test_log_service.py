"""Ingest and Monitor over a real channel."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest

from helpers import metric_total
from pulse.log_service.jetstream import SEQUENCE_STRIDE
from pulse.v1 import common_pb2, logs_pb2, logs_pb2_grpc

INFO, WARN, ERROR = common_pb2.SEVERITY_INFO, common_pb2.SEVERITY_WARN, common_pb2.SEVERITY_ERROR


def entry(message: str, source: str = "web-1", severity: int = INFO, **kw) -> logs_pb2.LogEntry:
    return logs_pb2.LogEntry(message=message, source=source, severity=severity, **kw)


async def ingest(stub, *batches: logs_pb2.IngestRequest, metadata=()) -> logs_pb2.IngestResponse:
    async def requests() -> AsyncIterator[logs_pb2.IngestRequest]:
        for batch in batches:
            yield batch

    return await stub.Ingest(requests(), metadata=metadata)


class Monitor:
    """Drives a Monitor call: send filters, read responses."""

    def __init__(self, stub) -> None:
        self.queue: asyncio.Queue = asyncio.Queue()
        self.call = stub.Monitor(self._requests())

    async def _requests(self) -> AsyncIterator[logs_pb2.LogFilter]:
        while (item := await self.queue.get()) is not None:
            yield item

    async def send(self, flt: logs_pb2.LogFilter) -> None:
        await self.queue.put(flt)

    async def close(self) -> None:
        await self.queue.put(None)

    async def read(self, wait_s: float = 10) -> logs_pb2.MonitorResponse:
        return await asyncio.wait_for(self.call.read(), wait_s)

    async def entries(self, n: int) -> list[tuple[int, logs_pb2.LogEntry]]:
        got: list[tuple[int, logs_pb2.LogEntry]] = []
        while len(got) < n:
            response = await self.read()
            got.extend((response.filter_revision, e) for e in response.entries)
        return got


async def test_ingest_counts_every_outcome(pulse_server) -> None:
    srv = await pulse_server(ingest={"max_message_bytes": 24})
    stub = logs_pb2_grpc.LogServiceStub(srv.channel)
    batch = logs_pb2.IngestRequest(
        batch_id="b1",
        entries=[
            entry("fine"),
            entry("no source", source=""),
            entry("bad severity", severity=3),
            entry("password=hunter2"),
            entry("x" * 40),
            entry("defaults", severity=common_pb2.SEVERITY_UNSPECIFIED),
        ],
    )
    reply = await ingest(stub, batch, batch)  # the second is a retry of the same batch
    assert (reply.accepted, reply.rejected, reply.redacted, reply.truncated) == (4, 2, 1, 1)
    assert reply.duplicate_batches == 1
    assert (
        metric_total(srv.telemetry, "pulse.ingest.entries", **{"pulse.ingest.outcome": "accepted"})
        == 4
    )
    assert (
        metric_total(
            srv.telemetry, "pulse.ingest.batches", **{"pulse.ingest.batch.outcome": "duplicate"}
        )
        == 1
    )
    spans = [
        s for s in srv.telemetry.span_exporter.get_finished_spans() if s.name == "ingest.batch"
    ]
    assert spans[0].attributes["pulse.ingest.accepted"] == 4
    assert spans[1].attributes["pulse.ingest.duplicate"] is True


async def test_defaults_sequence_and_redaction_reach_monitor(pulse_server) -> None:
    srv = await pulse_server()
    stub = logs_pb2_grpc.LogServiceStub(srv.channel)
    await ingest(
        stub,
        logs_pb2.IngestRequest(
            entries=[
                entry("a", severity=common_pb2.SEVERITY_UNSPECIFIED),
                entry("token: abc", attributes={"auth": "password=pw"}),
            ]
        ),
    )
    monitor = Monitor(stub)
    await monitor.send(logs_pb2.LogFilter(backlog=10))
    (rev, first), (_, second) = await monitor.entries(2)
    assert rev == 1
    assert first.severity == INFO
    assert first.time.seconds > 0
    # The ring counts entries; the bus numbers them after its batch's stream sequence.
    start = SEQUENCE_STRIDE if srv.shared else 1
    assert (first.sequence, second.sequence) == (start, start + 1)
    assert second.message == "token: [REDACTED]"
    assert second.attributes["auth"] == "password=[REDACTED]"
    await monitor.close()


async def test_retried_batch_is_applied_once_across_calls(pulse_server) -> None:
    srv = await pulse_server()
    stub = logs_pb2_grpc.LogServiceStub(srv.channel)
    batch = logs_pb2.IngestRequest(batch_id="same", entries=[entry("once")])
    first = await ingest(stub, batch)
    second = await ingest(stub, batch)
    assert (first.accepted, first.duplicate_batches) == (1, 0)
    assert (second.accepted, second.duplicate_batches) == (0, 1)
    assert len(srv.server.components[1].servicer.buffer) == 1


@pytest.mark.parametrize("pulse_server", ["shared"], indirect=True)
async def test_a_retry_on_another_replica_spends_none_of_its_rate_limit(pulse_server) -> None:
    # Three entries of burst and next to no refill: a retry that ran the pipeline would leave
    # the replica nothing for the next batch.
    limits = {"ingest": {"global_rate": 0.001, "global_burst": 3}}
    a, b = await pulse_server(**limits), await pulse_server(**limits)
    on_b = logs_pb2_grpc.LogServiceStub(b.channel)
    batch = logs_pb2.IngestRequest(batch_id="once", entries=[entry(f"m{i}") for i in range(3)])
    assert (await ingest(logs_pb2_grpc.LogServiceStub(a.channel), batch)).accepted == 3
    buffer_b = b.server.components[1].servicer.buffer
    for _ in range(200):  # B follows the stream
        if len(buffer_b) == 3:
            break
        await asyncio.sleep(0.02)
    retry = await ingest(on_b, batch)
    assert (retry.accepted, retry.rate_limited, retry.duplicate_batches) == (0, 0, 1)
    fresh = logs_pb2.IngestRequest(batch_id="new", entries=[entry(f"n{i}") for i in range(3)])
    assert (await ingest(on_b, fresh)).accepted == 3, "the retry spent B's rate limit"


async def test_oversized_batch_is_invalid_and_names_the_limit(pulse_server) -> None:
    srv = await pulse_server(ingest={"max_batch_entries": 2})
    stub = logs_pb2_grpc.LogServiceStub(srv.channel)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await ingest(stub, logs_pb2.IngestRequest(entries=[entry("a")] * 3))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "entries: a batch holds at most 2, got 3" in error.value.details()


async def test_rate_limits_drop_and_count(pulse_server) -> None:
    srv = await pulse_server(ingest={"source_rate": 1, "source_burst": 2})
    stub = logs_pb2_grpc.LogServiceStub(srv.channel)
    reply = await ingest(
        stub,
        logs_pb2.IngestRequest(
            entries=[entry(str(i)) for i in range(5)] + [entry("other", source="web-2")]
        ),
    )
    assert (reply.accepted, reply.rate_limited) == (3, 3)
    assert (
        metric_total(
            srv.telemetry, "pulse.ingest.rate_limited", **{"pulse.ratelimit.scope": "source"}
        )
        == 3
    )


async def test_ingest_stream_limit(pulse_server) -> None:
    srv = await pulse_server(ingest={"max_streams": 1})
    stub = logs_pb2_grpc.LogServiceStub(srv.channel)
    gate = asyncio.Event()

    async def slow() -> AsyncIterator[logs_pb2.IngestRequest]:
        yield logs_pb2.IngestRequest(entries=[entry("a")])
        await gate.wait()

    first = asyncio.ensure_future(stub.Ingest(slow()))
    await asyncio.sleep(0.3)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await ingest(stub, logs_pb2.IngestRequest(entries=[entry("b")]))
    assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    gate.set()
    assert (await first).accepted == 1


async def test_sequences_are_global_across_concurrent_ingesters(pulse_server) -> None:
    srv = await pulse_server()
    stub = logs_pb2_grpc.LogServiceStub(srv.channel)
    batches = [
        logs_pb2.IngestRequest(entries=[entry(f"{w}-{i}") for i in range(50)]) for w in range(4)
    ]
    await asyncio.gather(*(ingest(stub, b, b2) for b, b2 in zip(batches, batches, strict=True)))
    monitor = Monitor(stub)
    await monitor.send(logs_pb2.LogFilter(backlog=1000))
    got = await monitor.entries(400)
    sequences = [e.sequence for _, e in got]
    if srv.shared:  # one stream message per batch of 50, in one order
        assert sequences == sorted(sequences)
        assert sorted({s // SEQUENCE_STRIDE for s in sequences}) == list(range(1, 9))
        assert [s % SEQUENCE_STRIDE for s in sequences] == [*range(50)] * 8
    else:
        assert sequences == list(range(1, 401))
    await monitor.close()


async def test_filter_updates_mid_stream_bump_the_revision(pulse_server) -> None:
    srv = await pulse_server()
    stub = logs_pb2_grpc.LogServiceStub(srv.channel)
    monitor = Monitor(stub)
    await monitor.send(logs_pb2.LogFilter(min_severity=ERROR))
    await asyncio.sleep(0.2)
    await ingest(
        stub, logs_pb2.IngestRequest(entries=[entry("info"), entry("boom", severity=ERROR)])
    )
    [(rev, e)] = await monitor.entries(1)
    assert (rev, e.message) == (1, "boom")
    await monitor.send(logs_pb2.LogFilter(pattern="^disk", sources=["db"]))
    await asyncio.sleep(0.2)
    await ingest(
        stub,
        logs_pb2.IngestRequest(
            entries=[
                entry("disk full", source="web-1"),
                entry("disk full", source="db"),
                entry("cpu hot", source="db"),
            ]
        ),
    )
    [(rev, e)] = await monitor.entries(1)
    assert (rev, e.source, e.message) == (2, "db", "disk full")
    await monitor.close()


async def test_invalid_filter_ends_the_call_naming_the_field(pulse_server) -> None:
    srv = await pulse_server()
    stub = logs_pb2_grpc.LogServiceStub(srv.channel)
    monitor = Monitor(stub)
    await monitor.send(logs_pb2.LogFilter(pattern="(unclosed"))
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await monitor.read()
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "pattern: not valid RE2 syntax: missing )" in error.value.details()
    later = Monitor(stub)
    await later.send(logs_pb2.LogFilter())
    await asyncio.sleep(0.2)
    await later.send(logs_pb2.LogFilter(backlog=10**6))
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await later.read()
    assert "backlog: 1000000 is above the limit" in error.value.details()


async def test_half_close_flushes_then_ends_ok(pulse_server) -> None:
    srv = await pulse_server()
    stub = logs_pb2_grpc.LogServiceStub(srv.channel)
    await ingest(stub, logs_pb2.IngestRequest(entries=[entry(str(i)) for i in range(5)]))
    monitor = Monitor(stub)
    await monitor.send(logs_pb2.LogFilter(backlog=5))
    await monitor.close()
    got = []
    async for response in monitor.call:
        got.extend(response.entries)
    assert len(got) == 5
    assert await monitor.call.code() == grpc.StatusCode.OK


async def test_slow_subscriber_drops_while_fast_one_gets_everything(pulse_server) -> None:
    # Large entries fill the HTTP/2 flow-control window of the reader that does not read.
    srv = await pulse_server(
        monitor={"subscriber_queue": 10, "max_response_entries": 5},
        ingest={"source_rate": 1e6, "source_burst": 1e6},
    )
    stub = logs_pb2_grpc.LogServiceStub(srv.channel)
    slow, fast = Monitor(stub), Monitor(stub)
    await slow.send(logs_pb2.LogFilter())
    await fast.send(logs_pb2.LogFilter())
    await asyncio.sleep(0.2)
    reader = asyncio.create_task(fast.entries(1000))
    for i in range(100):
        batch = [entry(f"{i}-{j}-" + "x" * 8000) for j in range(10)]
        await ingest(stub, logs_pb2.IngestRequest(entries=batch))
        await asyncio.sleep(0)
    assert len(await asyncio.wait_for(reader, 60)) == 1000
    dropped = received = 0
    while received + dropped < 1000:
        response = await slow.read()
        dropped += response.dropped
        received += len(response.entries)
    assert dropped > 0
    assert metric_total(srv.telemetry, "pulse.monitor.entries.dropped") == dropped
    await slow.close()
    await fast.close()


async def test_subscriber_limit_and_cleanup_on_cancel(pulse_server) -> None:
    srv = await pulse_server(monitor={"max_subscribers": 1})
    stub = logs_pb2_grpc.LogServiceStub(srv.channel)
    first = Monitor(stub)
    await first.send(logs_pb2.LogFilter())
    await asyncio.sleep(0.2)
    second = Monitor(stub)
    await second.send(logs_pb2.LogFilter())
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await second.read()
    assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    first.call.cancel()
    buffer = srv.server.components[1].servicer.buffer
    for _ in range(100):
        if not buffer.subscribers:
            break
        await asyncio.sleep(0.02)
    assert not buffer.subscribers
    assert metric_total(srv.telemetry, "pulse.monitor.subscribers") == 0


async def _forwarded(srv, count: int) -> list:
    """The log records the server forwarded, once ``count`` of them are there."""
    for _ in range(500):
        records = srv.telemetry.forwarded.records()
        if len(records) >= count:
            return records
        await asyncio.sleep(0.01)
    raise AssertionError(f"{count} forwarded records expected, got {len(records)}")


async def test_accepted_entries_are_forwarded_as_log_records(pulse_server) -> None:
    srv = await pulse_server()
    stub = logs_pb2_grpc.LogServiceStub(srv.channel)
    await ingest(
        stub,
        logs_pb2.IngestRequest(
            entries=[
                entry(
                    "secret=abc",
                    severity=WARN,
                    task_id="t-1",
                    trace_id="0af7651916cd43dd8448eb211c80319c",
                    span_id="b7ad6b7169203331",
                ),
                entry("no ids of its own"),
            ]
        ),
    )
    own, plain = await _forwarded(srv, 2)
    assert own.body.string_value == "secret=[REDACTED]"
    assert own.severity_number == WARN
    attributes = {kv.key: kv.value for kv in own.attributes}
    assert attributes["pulse.log.source"].string_value == "web-1"
    assert attributes["pulse.log.task_id"].string_value == "t-1"
    assert attributes["pulse.log.sequence"].int_value > 0
    assert own.trace_id.hex() == "0af7651916cd43dd8448eb211c80319c"
    scope = srv.telemetry.forwarded.requests[0].resource_logs[0].scope_logs[0].scope
    assert scope.name == "pulse.ingest"
    batch_spans = [
        s for s in srv.telemetry.span_exporter.get_finished_spans() if s.name == "ingest.batch"
    ]
    # An entry without ids carries those of the batch's span, on whichever replica forwards it.
    assert plain.trace_id == batch_spans[-1].context.trace_id.to_bytes(16, "big")
    assert plain.span_id == batch_spans[-1].context.span_id.to_bytes(8, "big")


async def test_every_entry_is_forwarded_once_whichever_replica_ingests_it(pulse_server) -> None:
    first, second = await pulse_server(), await pulse_server()
    for srv, name in ((first, "a"), (second, "b")):
        stub = logs_pb2_grpc.LogServiceStub(srv.channel)
        await ingest(stub, logs_pb2.IngestRequest(entries=[entry(f"{name}{i}") for i in range(5)]))
    for _ in range(1000):
        if len(first.telemetry.forwarded.records() + second.telemetry.forwarded.records()) >= 10:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.3)  # a second copy would have arrived by now
    bodies = [
        r.body.string_value for srv in (first, second) for r in srv.telemetry.forwarded.records()
    ]
    assert sorted(bodies) == sorted(f"{n}{i}" for n in "ab" for i in range(5))


async def test_log_records_can_be_switched_off(pulse_server) -> None:
    srv = await pulse_server(ingest={"emit_log_records": False})
    stub = logs_pb2_grpc.LogServiceStub(srv.channel)
    await ingest(stub, logs_pb2.IngestRequest(entries=[entry("quiet")]))
    await asyncio.sleep(0.2)
    assert not srv.telemetry.forwarded.records()
