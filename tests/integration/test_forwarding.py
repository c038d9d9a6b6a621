"""The forwarding data path: accepted entries encoded per batch into OTLP and exported to a real
OTLP/gRPC receiver, with what reaches it held field by field against what the OpenTelemetry SDK
makes of the same entries (one log record each, as Pulse emitted them before)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanContext

from helpers import emit_as_sdk_log_records
from pulse.log_service.forwarding import LogForwarder
from pulse.log_service.otlp_logs import BatchContext, OtlpLogEncoder
from pulse.telemetry.log_export import grpc_exporter
from pulse.v1 import logs_pb2

RESOURCE = Resource.create(
    {"service.name": "pulse", "service.instance.id": "i-1", "deployment.environment.name": "t"}
)
TRACE, SPAN = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"


def _sdk_reference(entries: list[logs_pb2.LogEntry]) -> logs_service_pb2.ExportLogsServiceRequest:
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=RESOURCE, shutdown_on_exit=False)
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    emit_as_sdk_log_records(provider, entries)
    return encode_logs(exporter.get_finished_logs())


def _entries() -> list[logs_pb2.LogEntry]:
    cases = [
        dict(message="plain", source="web-1", severity=9),
        dict(message="with task", source="web-1", task_id="job-7", severity=13),
        dict(message="attrs", source="db", severity=17, attributes={"region": "eu", "k": "v"}),
        dict(message="own ids", source="a", severity=21, trace_id=TRACE, span_id=SPAN),
        dict(message="short id", source="a", severity=5, trace_id=TRACE[:30], span_id=SPAN),
        dict(message="not hex", source="a", severity=9, trace_id="z" * 32, span_id=SPAN),
        dict(message="zero ids", source="a", severity=9, trace_id="0" * 32, span_id="0" * 16),
        dict(message="only trace", source="a", severity=9, trace_id=TRACE),
        dict(message="ünïcödé ✓", source="ü", severity=9, attributes={"ключ": "значение"}),
        dict(message="", source="empty-body", severity=9),
        dict(message="empty key", source="a", severity=9, attributes={"": "x", "k": "v"}),
        dict(message="ours overridden", source="a", attributes={"pulse.log.source": "spoof"}),
        dict(message="many", source="a", attributes={f"k{i:03d}": "v" for i in range(130)}),
        dict(message="long", source="a" * 300, severity=13, attributes={"k": "v" * 20_000}),
    ]
    entries = []
    for sequence, fields in enumerate(cases, start=1):
        entry = logs_pb2.LogEntry(sequence=sequence, **fields)
        entry.time.FromNanoseconds(1_700_000_000_123_456_789 + sequence)
        entries.append(entry)
    before_1970 = logs_pb2.LogEntry(message="from 1969", source="old", severity=9, sequence=99)
    before_1970.time.seconds = -1
    entries.append(before_1970)
    return entries


def _ours(entries, context: BatchContext) -> logs_service_pb2.ExportLogsServiceRequest:
    wire = OtlpLogEncoder(RESOURCE).encode([(entries, context, 1_800_000_000_000_000_000)])
    return logs_service_pb2.ExportLogsServiceRequest.FromString(wire)


def _without_observed(request: logs_service_pb2.ExportLogsServiceRequest):
    copy = logs_service_pb2.ExportLogsServiceRequest()
    copy.CopyFrom(request)
    for resource in copy.resource_logs:
        for scope in resource.scope_logs:
            for record in scope.log_records:
                assert record.observed_time_unix_nano > 0
                record.observed_time_unix_nano = 0
    return copy


@pytest.fixture
def span_context() -> Iterator[SpanContext]:
    """A sampled ingest.batch span, current as a batch is submitted."""
    tracer = TracerProvider(shutdown_on_exit=False).get_tracer("t")
    with tracer.start_as_current_span("ingest.batch") as span:
        yield span.get_span_context()


@pytest.mark.filterwarnings("ignore:Log record attributes were dropped")
def test_every_field_is_what_the_sdk_made_of_the_entry(span_context) -> None:
    entries = _entries()
    expected = _without_observed(_sdk_reference(entries))
    ours = _without_observed(_ours(entries, BatchContext.current()))
    assert len(ours.resource_logs[0].scope_logs[0].log_records) == len(entries)
    for mine, theirs in zip(
        ours.resource_logs[0].scope_logs[0].log_records,
        expected.resource_logs[0].scope_logs[0].log_records,
        strict=True,
    ):
        assert mine == theirs, f"{mine.body.string_value!r}: {mine} != {theirs}"
    assert ours == expected, "resource, scope and grouping as the SDK's"
    # The entries without ids of their own carry the submitting span's: a test of the test.
    plain = ours.resource_logs[0].scope_logs[0].log_records[0]
    assert plain.trace_id == span_context.trace_id.to_bytes(16, "big")
    assert plain.flags == int(span_context.trace_flags)
    records = ours.resource_logs[0].scope_logs[0].log_records
    own = records[3]
    assert own.trace_id.hex() == TRACE
    assert own.span_id.hex() == SPAN
    assert records[10].dropped_attributes_count == 1
    assert records[12].dropped_attributes_count == 4  # 132 attributes, the SDK keeps 128


def test_outside_a_span_entries_without_ids_carry_none() -> None:
    entries = _entries()[:1]
    ours = _without_observed(_ours(entries, BatchContext()))
    assert ours == _without_observed(_sdk_reference(entries))
    assert ours.resource_logs[0].scope_logs[0].log_records[0].trace_id == b""


class Receiver(logs_service_pb2_grpc.LogsServiceServicer):
    """An OTLP/gRPC log receiver that keeps what it gets and fails as told."""

    def __init__(self) -> None:
        self.requests: list[logs_service_pb2.ExportLogsServiceRequest] = []
        self.failures: list[grpc.StatusCode] = []
        self.rejected = 0

    async def Export(self, request, context):
        if self.failures:
            await context.abort(self.failures.pop(0), "told to fail")
        self.requests.append(request)
        response = logs_service_pb2.ExportLogsServiceResponse()
        response.partial_success.rejected_log_records = self.rejected
        return response

    def bodies(self) -> list[str]:
        return [
            record.body.string_value
            for request in self.requests
            for resource in request.resource_logs
            for scope in resource.scope_logs
            for record in scope.log_records
        ]


@pytest.fixture
async def receiver():
    receiver = Receiver()
    server = grpc.aio.server()
    logs_service_pb2_grpc.add_LogsServiceServicer_to_server(receiver, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield receiver, channel
    finally:
        await channel.close()
        await server.stop(0)


def _batch(prefix: str, n: int) -> list[logs_pb2.LogEntry]:
    return [logs_pb2.LogEntry(message=f"{prefix}{i}", source="s", severity=9) for i in range(n)]


def _forwarder(channel, **kw) -> LogForwarder:
    kw.setdefault("retry_initial_s", 0.01)
    return LogForwarder(OtlpLogEncoder(RESOURCE), grpc_exporter(channel), **kw)


async def _until(predicate, timeout_s: float = 10.0) -> None:
    for _ in range(int(timeout_s / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"not within {timeout_s} s")


async def test_batches_reach_the_receiver_in_order_and_are_counted(receiver) -> None:
    got, channel = receiver
    forwarder = _forwarder(channel, max_export_entries=5)
    await forwarder.start()
    for name in "abc":
        assert forwarder.submit(_batch(name, 3), 300)
    await _until(lambda: forwarder.forwarded == 9)
    await forwarder.stop()
    assert got.bodies() == [f"{n}{i}" for n in "abc" for i in range(3)]
    assert len(got.requests) >= 2, "at most max_export_entries per export (whole batches)"
    assert forwarder.queued_entries == forwarder.queued_bytes == 0
    assert not forwarder.dropped


@pytest.mark.parametrize(
    ("bound", "kw"),
    [
        ("batches", {"max_queue_batches": 2}),
        ("entries", {"max_queue_entries": 5}),
        ("bytes", {"max_queue_bytes": 700}),
    ],
)
async def test_a_full_queue_drops_the_new_batch_and_counts_it(receiver, bound, kw) -> None:
    _, channel = receiver
    forwarder = _forwarder(channel, **kw)  # not started: nothing drains the queue
    assert forwarder.submit(_batch("a", 2), 300)
    assert forwarder.submit(_batch("b", 2), 300)
    assert not forwarder.submit(_batch("c", 2), 300), bound
    assert forwarder.dropped == {"queue_full": 2}
    assert (forwarder.queued_entries, forwarder.queued_bytes) == (4, 600)


async def test_retryable_failures_are_retried_with_backoff(receiver) -> None:
    got, channel = receiver
    got.failures = [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAVAILABLE]
    forwarder = _forwarder(channel)
    await forwarder.start()
    forwarder.submit(_batch("r", 2), 200)
    await _until(lambda: forwarder.forwarded == 2)
    await forwarder.stop()
    assert forwarder.retries == 2
    assert got.bodies() == ["r0", "r1"]


async def test_what_cannot_be_delivered_is_dropped_and_counted_by_reason(receiver) -> None:
    got, channel = receiver
    got.failures = [grpc.StatusCode.INVALID_ARGUMENT] + [grpc.StatusCode.UNAVAILABLE] * 50
    forwarder = _forwarder(channel, retry_max_elapsed_s=0.05)
    await forwarder.start()
    forwarder.submit(_batch("x", 2), 200)
    await _until(lambda: forwarder.dropped["export_failed"] == 2)
    forwarder.submit(_batch("y", 3), 300)
    await _until(lambda: forwarder.dropped["retries_exhausted"] == 3)
    await forwarder.stop()
    assert forwarder.forwarded == 0
    got.failures.clear()
    got.rejected = 1
    forwarder = _forwarder(channel)
    await forwarder.start()
    forwarder.submit(_batch("z", 3), 300)
    await _until(lambda: forwarder.forwarded == 2)
    await forwarder.stop()
    assert forwarder.dropped == {"rejected": 1}


async def test_stop_exports_what_is_queued_and_then_refuses(receiver) -> None:
    got, channel = receiver
    forwarder = _forwarder(channel)
    forwarder.submit(_batch("q", 4), 400)
    await forwarder.start()
    await forwarder.stop()
    assert got.bodies() == ["q0", "q1", "q2", "q3"]
    assert not forwarder.submit(_batch("late", 1), 100)
    assert forwarder.dropped == {"queue_full": 1}


async def test_stop_drops_and_counts_what_an_unreachable_receiver_never_took() -> None:
    channel = grpc.aio.insecure_channel("127.0.0.1:1")  # nothing listens there
    forwarder = _forwarder(channel, timeout_s=0.2, retry_max_elapsed_s=30)
    await forwarder.start()
    forwarder.submit(_batch("lost", 3), 300)
    forwarder.submit(_batch("queued", 2), 200)
    await forwarder.stop(timeout_s=0.5)
    await channel.close()
    assert forwarder.dropped == {"shutdown": 5}


async def test_one_record_outside_otlps_time_range_does_not_lose_its_export(receiver) -> None:
    got, channel = receiver
    entries = _entries()
    forwarder = _forwarder(channel)
    await forwarder.start()
    forwarder.submit(entries, 4096)
    await _until(lambda: forwarder.forwarded == len(entries))
    await forwarder.stop()
    records = got.requests[0].resource_logs[0].scope_logs[0].log_records
    assert records[-1].body.string_value == "from 1969"
    assert records[-1].time_unix_nano == 0
