"""``pulse serve`` as a process: JSON logs with trace ids, SIGTERM drains and exits 0,
invalid configuration exits 2 naming the key."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest

from helpers import free_port
from pulse.v1 import sensors_pb2, sensors_pb2_grpc


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PULSE_", "OTEL_"))}
    env.update(
        PULSE_GRPC_HOST="127.0.0.1",
        PULSE_ADMIN_HOST="127.0.0.1",
        PULSE_DATA_DIR=str(tmp_path),
        PULSE_TELEMETRY_ENABLED="false",
        **extra,
    )
    return env


def _wait_serving(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, "pulse serve exited early"
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError("pulse serve did not start listening")


@pytest.mark.parametrize("telemetry", ["false", "true"])
def test_sigterm_drains_and_exits_zero_with_json_logs(tmp_path: Path, telemetry: str) -> None:
    """With telemetry on, the collector is unreachable: the exit must not hang on it."""
    port, admin = free_port(), free_port()
    env = _env(tmp_path, PULSE_GRPC_PORT=str(port), PULSE_ADMIN_PORT=str(admin))
    env["PULSE_TELEMETRY_ENABLED"] = telemetry
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{free_port()}"
    process = subprocess.Popen(
        [sys.executable, "-m", "pulse", "serve"],
        env={**env, "PULSE_GRPC_SHUTDOWN_GRACE_S": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_serving(port, process)
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = sensors_pb2_grpc.SensorServiceStub(channel)
            with pytest.raises(grpc.RpcError):
                stub.GetSummary(sensors_pb2.GetSummaryRequest(sensor_id="absent"), timeout=10)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    messages = [line["message"] for line in lines]
    assert "pulse serving" in messages
    assert "pulse stopped" in messages
    assert all({"time", "level", "logger", "message", "service.name"} <= set(x) for x in lines)


def test_invalid_configuration_exits_two_naming_the_key(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pulse", "serve"],
        env=_env(tmp_path, PULSE_INGEST_MAX_BATCH_ENTRIES="lots"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "ingest.max_batch_entries" in result.stderr
    assert "lots" in result.stderr


@pytest.mark.parametrize("command", [["serve"], ["config", "show"]])
@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        (
            "PULSE_TOKENS",
            "secret",
            "PULSE_TOKENS: not a Pulse setting; did you mean PULSE_AUTH_TOKENS?",
        ),
        ("PULSE_INGEST_REDACTION_PATTERNS", "(unclosed", "ingest.redaction_patterns"),
    ],
    ids=["typo", "redaction-pattern"],
)
def test_bad_variables_exit_two_naming_them(
    tmp_path: Path, command: list[str], variable: str, value: str, named: str
) -> None:
    env = _env(tmp_path, **{variable: value, "PULSE_STACK_PORT_OFFSET": "14500"})
    result = subprocess.run(
        [sys.executable, "-m", "pulse", *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert named in result.stderr
    assert "Traceback" not in result.stderr
