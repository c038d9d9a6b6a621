"""docs/telemetry.md is the contract dashboards and alerts are written against: it must name
exactly the instruments, spans and span attributes the code emits."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
from collections.abc import AsyncIterator
from pathlib import Path

import grpc

from pulse.telemetry import Instruments
from pulse.v1 import (
    logs_pb2,
    logs_pb2_grpc,
    metrics_pb2,
    metrics_pb2_grpc,
    sensors_pb2,
    sensors_pb2_grpc,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "telemetry.md"
_CODE = re.compile(r"`([^`]+)`")
_KEY = re.compile(r"[a-z_]+(\.[a-z_]+)+")


def _rows(section: str) -> list[list[str]]:
    """Table rows (cells) under the heading ``section`` (up to the next heading of its level)."""
    text = DOC.read_text()
    level = re.search(rf"^(#+) {re.escape(section)}$", text, re.M)
    assert level, f"no section {section!r} in {DOC.name}"
    body = text[level.end() :]
    end = re.search(rf"^#{{1,{len(level.group(1))}}} ", body, re.M)
    body = body[: end.start()] if end else body
    rows = []
    for line in body.splitlines():
        if line.startswith("| ") and not line.startswith("| ---"):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows[1:] if rows else rows  # without the header


def _names(cell: str) -> set[str]:
    """Attribute keys of a cell: the backticked dotted lowercase names (values are not)."""
    return {name for name in _CODE.findall(cell) if _KEY.fullmatch(name)}


def documented_spans() -> dict[str, set[str]]:
    spans = {}
    for name, kind, _where, attributes in _rows("Traces"):
        if kind == "INTERNAL":
            spans[_CODE.findall(name)[0]] = _names(attributes)
    return spans


# Instruments recorded only on the shared engines (sensors.database_url, bus.url).
SHARED = "Shared state (several replicas)"


def documented_metrics(shared: bool = True) -> dict[str, tuple[str, set[str]]]:
    metrics = {}
    headings = ("RPC (semantic conventions)", "Streams", "StreamMetrics", "Ingest and Monitor")
    for heading in (*headings, "Sensors", *([SHARED] if shared else []), "Server"):
        for row in _rows(heading):
            if len(row) == 5:  # name, type, unit, attributes, Prometheus
                metrics[_CODE.findall(row[0])[0]] = (row[2].strip("`"), _names(row[3]))
    return metrics


async def _workload(srv) -> None:
    """One call of every kind, with the outcomes that carry extra attributes."""
    logs = logs_pb2_grpc.LogServiceStub(srv.channel)
    sensors = sensors_pb2_grpc.SensorServiceStub(srv.channel)
    metrics = metrics_pb2_grpc.MetricsServiceStub(srv.channel)
    batch = logs_pb2.IngestRequest(
        batch_id="b", entries=[logs_pb2.LogEntry(message="m", source="s", task_id="t")]
    )

    async def twice() -> AsyncIterator[logs_pb2.IngestRequest]:
        yield batch
        yield batch

    await logs.Ingest(twice())
    queue: asyncio.Queue = asyncio.Queue()

    async def filters() -> AsyncIterator[logs_pb2.LogFilter]:
        while (item := await queue.get()) is not None:
            yield item

    monitor = logs.Monitor(filters())
    await queue.put(logs_pb2.LogFilter(backlog=1))
    await monitor.read()
    await asyncio.sleep(0.5)  # a tick
    await queue.put(logs_pb2.LogFilter(pattern="(bad"))
    with contextlib.suppress(grpc.aio.AioRpcError):
        await monitor.read()
    good = sensors_pb2.Reading(id="r", sensor_id="s", temperature=20.0)
    await sensors.Record(iter([good, sensors_pb2.Reading(id="", sensor_id="s")]))
    watch = sensors.WatchSummaries(sensors_pb2.WatchSummariesRequest())
    await watch.read()
    stream = metrics.StreamMetrics(metrics_pb2.StreamMetricsRequest(interval_ms=100))
    for _ in range(12):  # more than a tick
        await stream.read()
    await asyncio.sleep(0.5)
    stream.cancel()
    watch.cancel()
    await asyncio.sleep(0.2)


async def test_every_span_and_attribute_the_code_emits_is_documented(pulse_server) -> None:
    srv = await pulse_server()
    await _workload(srv)
    emitted: dict[str, set[str]] = {}
    for span in srv.telemetry.span_exporter.get_finished_spans():
        if span.kind.name == "INTERNAL":
            emitted.setdefault(span.name, set()).update(span.attributes or {})
    assert emitted == documented_spans()


async def test_every_instrument_is_documented_with_its_unit_and_attributes(pulse_server) -> None:
    srv = await pulse_server()
    await _workload(srv)
    code: dict[str, tuple[str, set[str]]] = {}
    for field in dataclasses.fields(Instruments):
        instrument = getattr(srv.telemetry.instruments, field.name)
        code[instrument.name] = (instrument.unit, set())
    data = srv.telemetry.metric_reader.get_metrics_data()
    for resource_metrics in data.resource_metrics:
        for scope in resource_metrics.scope_metrics:
            for metric in scope.metrics:
                keys = code.setdefault(metric.name, (metric.unit, set()))[1]
                for point in metric.data.data_points:
                    keys.update(point.attributes)
    documented = documented_metrics(srv.shared)
    assert set(code) == set(documented)
    for name, (unit, keys) in code.items():
        doc_unit, doc_keys = documented[name]
        assert unit == doc_unit, name
        assert keys <= doc_keys, (name, keys - doc_keys)
