"""The pulse command against a real server, and the load generator's client telemetry."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from pulse.client import ClientOptions
from pulse.loadgen import LoadConfig, LoadGenerator
from pulse.telemetry import build_test_telemetry


async def pulse_cli(*args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pulse",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin), 60)
    return process.returncode, out.decode(), err.decode()


async def test_send_logs_then_monitor_them_with_backlog(pulse_server, tmp_path: Path) -> None:
    srv = await pulse_server()
    file = tmp_path / "app.log"
    file.write_text('first line\n{"message": "second token=abc", "severity": "WARN"}\n')
    code, out, _ = await pulse_cli(
        "send-logs", str(file), "--source", "cli", "--target", srv.grpc_address
    )
    assert code == 0
    assert json.loads(out) | {} == {
        "accepted": "2",
        "redacted": "1",
        "rate_limited": "0",
        "rejected": "0",
        "truncated": "0",
        "duplicate_batches": "0",
    }
    code, out, _ = await pulse_cli(
        "logs", "--backlog", "10", "--count", "2", "--json", "--target", srv.grpc_address
    )
    assert code == 0
    entries = [json.loads(line) for line in out.splitlines()]
    assert [e["message"] for e in entries] == ["first line", "second token=[REDACTED]"]
    assert entries[1]["severity"] == "SEVERITY_WARN"


async def test_sensors_and_metrics_commands(pulse_server) -> None:
    srv = await pulse_server()
    target = ("--target", srv.grpc_address)
    code, out, _ = await pulse_cli(
        "sensors", "record", "--sensor", "s1", "--temperature", "20.5", *target
    )
    assert (code, json.loads(out)["accepted"]) == (0, "1")
    code, out, _ = await pulse_cli("sensors", "get", "--sensor", "s1", *target)
    assert json.loads(out)["avg_temperature"] == 20.5
    code, out, _ = await pulse_cli(
        "metrics", "--type", "latency", "--interval-ms", "100", "--count", "4", *target
    )
    assert code == 0
    assert len(out.splitlines()) == 4
    assert "latency=" in out


async def test_grpc_errors_are_one_readable_line_and_exit_one(pulse_server) -> None:
    srv = await pulse_server()
    code, _out, err = await pulse_cli(
        "sensors", "get", "--sensor", "ghost", "--target", srv.grpc_address
    )
    assert code == 1
    assert err.strip() == "pulse: NOT_FOUND: sensor_id 'ghost': no readings"
    code, _, err = await pulse_cli("metrics", "--type", "gpu", "--target", srv.grpc_address)
    assert code == 1
    assert err.startswith("pulse: INVALID_ARGUMENT: metric_types[0]")
    assert "Traceback" not in err


async def test_config_show_masks_secrets_and_bad_config_exits_two(tmp_path: Path) -> None:
    config = tmp_path / "pulse.yaml"
    config.write_text("auth:\n  tokens: [very-secret]\ngrpc:\n  port: 6000\n")
    code, out, _ = await pulse_cli("config", "show", "--config", str(config))
    assert code == 0
    assert "very-secret" not in out
    assert "  tokens:\n  - '***'\n" in out
    assert "port: 6000" in out
    config.write_text("grpc:\n  port: lots\n")
    code, _, err = await pulse_cli("serve", "--config", str(config))
    assert code == 2
    assert "grpc.port" in err


@pytest.mark.timeout(120)
async def test_loadgen_drives_every_rpc_and_joins_traces(pulse_server) -> None:
    srv = await pulse_server()
    client_telemetry = build_test_telemetry("pulse-loadgen")
    config = LoadConfig(
        client=ClientOptions(target=srv.grpc_address),
        duration_s=6,
        dashboards=1,
        agents=1,
        operators=1,
        sensors=2,
        watchers=1,
        unary_interval_s=0.2,
        ingest_interval_s=0.2,
        seed=3,
        summary_interval_s=1,
    )
    stats = await LoadGenerator(config, client_telemetry).run(out=sys.stderr)
    methods = {method for method, _ in stats.calls}
    assert {
        "pulse.v1.SensorService/GetSummary",
        "pulse.v1.MetricsService/ListMetricTypes",
        "pulse.v1.LogService/Ingest",
        "pulse.v1.SensorService/Record",
    } <= methods
    unexpected = {code for code in stats.errors() if code not in ("NOT_FOUND", "CANCELLED")}
    assert not unexpected
    client_traces = {
        s.context.trace_id
        for s in client_telemetry.span_exporter.get_finished_spans()
        if s.kind.name == "CLIENT"
    }
    server_traces = {
        s.context.trace_id
        for s in srv.telemetry.span_exporter.get_finished_spans()
        if s.kind.name == "SERVER"
    }
    assert client_traces & server_traces, "client spans and server spans share trace ids"
