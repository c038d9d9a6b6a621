"""One `pulse serve` process for the abuse suite, its memory and its own metrics."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from pulse.config import Settings, load
from pulse.memory import memory_bound
from pulse.v1 import metrics_pb2, metrics_pb2_grpc

HERE = Path(__file__).parent
# Short timeouts so the suite sees idle calls and silent connections ended within seconds.
SETTINGS = {
    "PULSE_INGEST_IDLE_TIMEOUT_S": "2",
    "PULSE_MONITOR_FIRST_FILTER_TIMEOUT_S": "2",
    "PULSE_GRPC_KEEPALIVE_TIME_S": "1",
    "PULSE_GRPC_KEEPALIVE_TIMEOUT_S": "1",
    "PULSE_GRPC_SHUTDOWN_GRACE_S": "1",
    "PULSE_TELEMETRY_ENABLED": "false",
}
# Codes that count against availability whatever the RPC shape, and the shapes where a missed
# deadline does too (docs/telemetry.md).
SERVER_ERRORS = {"UNKNOWN", "INTERNAL", "UNAVAILABLE", "DATA_LOSS"}
DEADLINE_SHAPES = {"unary", "client_stream"}


@dataclass
class Abused:
    process: subprocess.Popen
    target: str
    admin_url: str
    settings: Settings
    log: Path

    @property
    def rss(self) -> int:
        return psutil.Process(self.process.pid).memory_info().rss

    @property
    def memory_bound(self) -> int:
        return sum(memory_bound(self.settings).values())

    def calls(self) -> dict[tuple[str, str, str], float]:
        """(method, type, status) -> calls, from Pulse's own /metrics."""
        with urllib.request.urlopen(f"{self.admin_url}/metrics", timeout=10) as response:
            text = response.read().decode()
        counts: dict[tuple[str, str, str], float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "rpc_server_call_duration_seconds_count":
                    labels = sample.labels
                    key = (
                        labels["rpc_method"],
                        labels["pulse_rpc_type"],
                        labels["rpc_response_status_code"],
                    )
                    counts[key] = counts.get(key, 0) + sample.value
        return counts

    def server_errors(self) -> dict[tuple[str, str, str], float]:
        return {
            key: n
            for key, n in self.calls().items()
            if key[2] in SERVER_ERRORS
            or (key[2] == "DEADLINE_EXCEEDED" and key[1] in DEADLINE_SHAPES)
        }

    def error_lines(self) -> list[str]:
        lines = []
        for line in self.log.read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue  # grpc core's own lines on stderr
            if record.get("level") in ("ERROR", "CRITICAL"):
                lines.append(record["message"])
        return lines

    def probe(self, calls: int = 30) -> float:
        """Median latency of an unrelated unary call (ListMetricTypes) on its own channel."""
        with grpc.insecure_channel(self.target) as channel:
            stub = metrics_pb2_grpc.MetricsServiceStub(channel)
            request = metrics_pb2.ListMetricTypesRequest()
            stub.ListMetricTypes(request, timeout=30)  # connect outside the measurement
            samples = []
            for _ in range(calls):
                started = time.perf_counter()
                stub.ListMetricTypes(request, timeout=30)
                samples.append(time.perf_counter() - started)
        return statistics.median(samples)


@pytest.fixture(scope="module")
def abused(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Abused]:
    data = tmp_path_factory.mktemp("abuse")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PULSE_", "OTEL_"))}
    # Port 0: the kernel picks free ports at bind time and Pulse logs them, so no other test's
    # server can take them between a probe and the bind.
    env.update(
        SETTINGS,
        PULSE_GRPC_HOST="127.0.0.1",
        PULSE_GRPC_PORT="0",
        PULSE_ADMIN_PORT="0",
        PULSE_DATA_DIR=str(data),
    )
    log = data / "pulse.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "pulse", "serve"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        port, admin = _serving_ports(process, log)
        settings = _settings(env)
        server = Abused(process, f"127.0.0.1:{port}", f"http://127.0.0.1:{admin}", settings, log)
        _wait_ready(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


def _settings(env: dict[str, str]) -> Settings:
    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(env)
        return load()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _serving_ports(process: subprocess.Popen, log: Path) -> tuple[int, int]:
    """The gRPC and admin ports from Pulse's "pulse serving" log line."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()[-2000:]
        for line in log.read_text().splitlines():
            if line.startswith("{") and json.loads(line).get("message") == "pulse serving":
                record = json.loads(line)
                return record["grpc.port"], record["admin.port"]
        time.sleep(0.2)
    raise AssertionError("pulse serve did not start serving")


def _wait_ready(server: Abused) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert server.process.poll() is None, server.log.read_text()[-2000:]
        try:
            with urllib.request.urlopen(f"{server.admin_url}/readyz", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("pulse serve did not get ready")


class Attack:
    """An attack from attacks.py in a process of its own, started and waited for."""

    def __init__(self, name: str, target: str, seconds: float) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / "attacks.py"), name, target, str(seconds)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line.strip() == "ready", self.process.stderr.read() if self.process.stderr else ""

    def wait(self, timeout_s: float = 120) -> None:
        _, err = self.process.communicate(timeout=timeout_s)
        assert self.process.returncode == 0, err[-3000:]
