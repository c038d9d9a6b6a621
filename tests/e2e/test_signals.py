"""What an on-call engineer relies on, against the real Collector, Jaeger, Prometheus and
VictoriaLogs: traces of every RPC, metrics with exemplars that lead to traces, logs with trace
and span ids, secrets that never reach the logs backend, and no record dropped on the way."""

from __future__ import annotations

import asyncio
import re
import time
import uuid

import grpc
import pytest
from conftest import LivePulse, eventually, http_json, logsql, rows_dropped
from stack import Stack

from pulse.v1 import logs_pb2, logs_pb2_grpc

pytestmark = pytest.mark.e2e

CONTRACT = [
    "/pulse.v1.MetricsService/StreamMetrics",
    "/pulse.v1.MetricsService/ListMetricTypes",
    "/pulse.v1.LogService/Ingest",
    "/pulse.v1.LogService/Monitor",
    "/pulse.v1.SensorService/Record",
    "/pulse.v1.SensorService/WatchSummaries",
    "/pulse.v1.SensorService/GetSummary",
]


def _traces(stack: Stack, **params) -> list[dict]:
    params = {"limit": 20, "lookback": "1h", **params}
    return http_json(stack.url("jaeger") + "/api/traces", params)["data"] or []


def _prom(stack: Stack, query: str) -> list[dict]:
    reply = http_json(stack.url("prometheus") + "/api/v1/query", {"query": query})
    assert reply["status"] == "success", reply
    return reply["data"]["result"]


def test_jaeger_holds_a_trace_of_every_rpc(stack: Stack, pulse_live: LivePulse) -> None:
    eventually(  # fails naming what was missing when the services do not appear
        lambda: (
            {"pulse", "pulse-loadgen"}
            <= set(http_json(stack.url("jaeger") + "/api/services")["data"] or [])
        ),
        "services pulse and pulse-loadgen in Jaeger",
    )
    for operation in CONTRACT:
        traces = eventually(
            lambda op=operation: _traces(stack, service="pulse", operation=op),
            f"a trace of {operation}",
            timeout_s=180,
        )
        trace = traces[0]
        span = next(
            s
            for s in trace["spans"]
            if s["operationName"] == operation
            and trace["processes"][s["processID"]]["serviceName"] == "pulse"
        )
        tags = {t["key"]: t["value"] for t in span["tags"]}
        assert tags["rpc.system"] == "grpc"
        assert tags["rpc.service"] == operation.split("/")[1]
        assert tags["span.kind"] == "server"


def test_client_and_server_spans_join_in_one_trace(stack: Stack, pulse_live: LivePulse) -> None:
    def joined() -> dict | None:
        for trace in _traces(
            stack, service="pulse-loadgen", operation="/pulse.v1.SensorService/GetSummary"
        ):
            names = {p["serviceName"] for p in trace["processes"].values()}
            if {"pulse", "pulse-loadgen"} <= names:
                return trace
        return None

    trace = eventually(joined, "a GetSummary trace with client and server spans")
    kinds = {
        trace["processes"][s["processID"]]["serviceName"]: {
            t["key"]: t["value"] for t in s["tags"]
        }.get("span.kind")
        for s in trace["spans"]
    }
    assert kinds == {"pulse-loadgen": "client", "pulse": "server"}


def test_prometheus_holds_rpc_and_stream_metrics(stack: Stack, pulse_live: LivePulse) -> None:
    def methods() -> set[str]:
        result = _prom(
            stack, 'sum by (rpc_method) (rpc_server_call_duration_seconds_count{job="pulse"})'
        )
        return {r["metric"]["rpc_method"] for r in result}

    expected = {m[1:] for m in CONTRACT}
    eventually(lambda: expected <= methods(), "rpc.server.call.duration of every method", 180)
    series = _prom(stack, 'rpc_server_call_duration_seconds_count{job="pulse"}')[0]["metric"]
    assert {"rpc_system_name", "rpc_response_status_code", "pulse_rpc_type", "instance"} <= set(
        series
    )
    for name in (
        "pulse_rpc_active_streams",
        "pulse_rpc_stream_messages_sent_total",
        "pulse_ingest_entries_total",
        "pulse_monitor_entries_delivered_total",
        "pulse_metrics_schedule_lag_seconds_bucket",
        "pulse_sensor_readings_total",
        "pulse_sensor_temperature_celsius",
        "pulse_log_buffer_entries",
        "process_memory_usage_bytes",
        "rpc_client_call_duration_seconds_count",
    ):
        eventually(lambda n=name: _prom(stack, n), f"{name} in Prometheus", 60)


def test_span_metrics_and_every_scrape_target_up(stack: Stack, pulse_live: LivePulse) -> None:
    eventually(
        lambda: _prom(stack, 'traces_span_metrics_calls_total{service_name="pulse"}'),
        "span_metrics series of pulse",
        120,
    )
    up = eventually(
        lambda: [r for r in _prom(stack, "up") if r["metric"]["job"] != "pulse"], "scrape targets"
    )
    jobs = {r["metric"]["job"]: r["value"][1] for r in up}
    assert set(jobs) == {"prometheus", "otelcol", "alertmanager", "victorialogs", "jaeger"}
    assert set(jobs.values()) == {"1"}, jobs


def test_exemplars_lead_to_traces_in_jaeger(stack: Stack, pulse_live: LivePulse) -> None:
    def exemplar_trace_ids() -> list[str]:
        now = time.time()
        reply = http_json(
            stack.url("prometheus") + "/api/v1/query_exemplars",
            {
                "query": 'rpc_server_call_duration_seconds_bucket{job="pulse"}',
                "start": now - 3600,
                "end": now,
            },
        )
        return [
            e["labels"]["trace_id"]
            for s in reply["data"]
            for e in s["exemplars"]
            if "trace_id" in e["labels"]
        ]

    ids = eventually(exemplar_trace_ids, "exemplars on rpc_server_call_duration_seconds", 120)

    def found() -> bool:
        for trace_id in ids[-20:]:
            data = http_json(stack.url("jaeger") + f"/api/traces/{trace_id}").get("data")
            if data:
                return True
        return False

    eventually(found, "the trace of an exemplar in Jaeger", 60)


def test_victorialogs_holds_pulse_logs_with_trace_and_span_ids(
    stack: Stack, pulse_live: LivePulse
) -> None:
    records = eventually(
        lambda: logsql(stack, '{service.name="pulse"} trace_id:* span_id:*', limit=100),
        "Pulse logs with trace and span ids in VictoriaLogs",
        120,
    )
    # OTLP's binary ids, stored as the lowercase hex that Jaeger and Grafana's links use.
    assert all(re.fullmatch(r"[0-9a-f]{32}", r["trace_id"]) for r in records), records[:3]
    assert all(re.fullmatch(r"[0-9a-f]{16}", r["span_id"]) for r in records), records[:3]
    assert {r["service.name"] for r in records} == {"pulse"}
    trace_ids = list(dict.fromkeys(r["trace_id"] for r in records))

    def a_log_lines_trace_in_jaeger() -> str | None:
        for trace_id in trace_ids[:30]:
            try:
                if http_json(stack.url("jaeger") + f"/api/traces/{trace_id}").get("data"):
                    return trace_id
            except Exception:
                continue
        return None

    trace_id = eventually(a_log_lines_trace_in_jaeger, "a log line's trace in Jaeger", 60)
    # The way back, as Grafana's traces-to-logs link asks it: the logs of that trace.
    assert logsql(stack, f'{{service.name="pulse"}} AND trace_id:="{trace_id}"')


async def _ingest(address: str, entries: list[logs_pb2.LogEntry]) -> logs_pb2.IngestResponse:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = logs_pb2_grpc.LogServiceStub(channel)
        request = logs_pb2.IngestRequest(batch_id=uuid.uuid4().hex, entries=entries)
        return await stub.Ingest(iter([request]), timeout=10)


def test_a_secret_sent_in_a_log_reaches_the_logs_backend_only_redacted(
    stack: Stack, pulse_live: LivePulse
) -> None:
    marker = f"e2e-secret-{uuid.uuid4().hex[:12]}"
    secret = f"S3cr3t{uuid.uuid4().hex}"
    reply = asyncio.run(
        _ingest(
            pulse_live.grpc_address,
            [logs_pb2.LogEntry(source="e2e", message=f"{marker} login password={secret} ok")],
        )
    )
    assert (reply.accepted, reply.redacted) == (1, 1)
    records = eventually(
        lambda: logsql(stack, f'{{service.name="pulse"}} "{marker}"'),
        "the redacted entry in VictoriaLogs",
        90,
    )
    assert [r["_msg"] for r in records] == [f"{marker} login password=[REDACTED] ok"]
    assert records[0]["pulse.log.source"] == "e2e"
    assert not logsql(stack, f'"{secret}"')
    assert all(secret not in str(r) for r in records)


def test_victorialogs_dropped_no_record(stack: Stack, pulse_live: LivePulse) -> None:
    """VictoriaLogs answers 200 to records outside its retention and only counts them: the
    counter must exist and stay at zero, and Prometheus must see it (the alert reads it there)."""
    eventually(
        lambda: logsql(stack, '{service.name="pulse"}', limit=1), "Pulse's logs in VictoriaLogs"
    )
    dropped = rows_dropped(stack)
    assert dropped, "vl_rows_dropped_total missing from VictoriaLogs' /metrics"
    assert set(dropped.values()) == {0.0}, dropped
    scraped = eventually(
        lambda: _prom(stack, 'vl_rows_dropped_total{job="victorialogs"}'),
        "vl_rows_dropped_total scraped by Prometheus",
        60,
    )
    assert {r["value"][1] for r in scraped} == {"0"}, scraped
