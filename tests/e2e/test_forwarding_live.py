"""The forwarding data path through the real collector into VictoriaLogs: the same entries sent
once as the SDK's log records (as Pulse sent them before) and once by the forwarder are stored
field for field alike."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest
from conftest import eventually, logsql
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from stack import Stack

from helpers import emit_as_sdk_log_records
from pulse.log_service.forwarding import LogForwarder
from pulse.log_service.otlp_logs import BatchContext, OtlpLogEncoder
from pulse.telemetry.log_export import grpc_exporter
from pulse.v1 import logs_pb2

pytestmark = pytest.mark.e2e

TRACE, SPAN = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"


def _entries(source: str, marker: str) -> list[logs_pb2.LogEntry]:
    fields = [
        dict(message=f"{marker} plain", severity=9),
        dict(message=f"{marker} warn with task", severity=13, task_id="job-7"),
        dict(message=f"{marker} attrs", severity=17, attributes={"region": "eu", "k": "v"}),
        dict(message=f"{marker} own ids", severity=21, trace_id=TRACE, span_id=SPAN),
        dict(message=f"{marker} ünïcödé ✓", severity=5),
    ]
    entries = []
    for sequence, f in enumerate(fields, start=1):
        entry = logs_pb2.LogEntry(source=source, sequence=sequence, **f)
        entry.time.FromNanoseconds(1_700_000_000_000_000_000 + sequence * 1_000_000)
        entries.append(entry)
    return entries


async def _forward(endpoint: str, resource: Resource, entries: list[logs_pb2.LogEntry]) -> None:
    async with grpc.aio.insecure_channel(endpoint) as channel:
        forwarder = LogForwarder(OtlpLogEncoder(resource), grpc_exporter(channel))
        await forwarder.start()
        assert forwarder.submit(entries, 4096, BatchContext())
        await forwarder.stop(timeout_s=20)
        assert forwarder.forwarded == len(entries), forwarder.dropped


def _stored(stack: Stack, marker: str, count: int) -> list[dict]:
    def found() -> list[dict] | None:
        rows = logsql(stack, f'"{marker}"', since_s=10 * 365 * 86400)
        return rows if len(rows) == count else None

    rows = eventually(found, f"{count} records of {marker} in VictoriaLogs", 90)
    return sorted(rows, key=lambda r: r["pulse.log.sequence"])


def test_forwarded_entries_are_stored_as_the_sdks_records_were(stack: Stack) -> None:
    run = uuid.uuid4().hex[:12]
    resource = Resource.create({"service.name": "pulse-e2e-forwarding", "e2e.run": run})
    sdk_entries = _entries("e2e-sdk", f"fwd-{run}-sdk")
    ours = _entries("e2e-forwarder", f"fwd-{run}-ours")

    provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
    endpoint = stack.url("otlp_grpc")
    exporter = OTLPLogExporter(endpoint=endpoint, insecure=True)
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    emit_as_sdk_log_records(provider, sdk_entries)
    provider.shutdown()
    asyncio.run(_forward(endpoint, resource, ours))

    before = _stored(stack, f"fwd-{run}-sdk", len(sdk_entries))
    after = _stored(stack, f"fwd-{run}-ours", len(ours))
    for old, new in zip(before, after, strict=True):
        old, new = dict(old), dict(new)
        assert old.pop("_msg").replace("-sdk", "") == new.pop("_msg").replace("-ours", "")
        assert (old.pop("pulse.log.source"), new.pop("pulse.log.source")) == (
            "e2e-sdk",
            "e2e-forwarder",
        )
        # The time the collector saw each record differs; nothing else may.
        for record in (old, new):
            record.pop("observed_timestamp", None)
        assert old == new
    assert after[3]["trace_id"] == TRACE
    assert after[3]["span_id"] == SPAN
    assert after[0]["service.name"] == "pulse-e2e-forwarding"
    assert after[0]["scope.name"] == "pulse.ingest"
    assert after[1]["pulse.log.task_id"] == "job-7"
    assert after[2]["region"] == "eu"
