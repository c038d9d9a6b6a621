"""The live session: one local stack of real upstream binaries, one Pulse wired to it and one load
generator, shared by the end-to-end and the browser tests (a plugin of tests/conftest.py)."""

from __future__ import annotations

import asyncio
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "deploy" / "local"))

from stack import Stack  # noqa: E402

from helpers import STACK_PORT_OFFSET, eventually, free_port  # noqa: E402
from shared_state import Engines, drop, fresh_database, fresh_stream  # noqa: E402


def http_json(
    url: str,
    params: dict[str, Any] | None = None,
    method: str = "GET",
    body: Any = None,
    timeout: float = 10,
) -> Any:
    if params:
        url = f"{url}?{urllib.parse.urlencode(params)}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        raw = response.read()
    return json.loads(raw) if raw else None


def logsql(stack: Stack, query: str, since_s: float = 3600, limit: int = 1000) -> list[dict]:
    """The newest ``limit`` records matching the LogsQL ``query`` in the stack's VictoriaLogs,
    one dict of fields per record (``_msg``, ``_time``, ``trace_id``, ``service.name``, …)."""
    now = time.time()
    params = {
        "query": query,
        "start": f"{now - since_s:.3f}",
        "end": f"{now + 10:.3f}",
        "limit": limit,
    }
    url = f"{stack.url('victorialogs')}/select/logsql/query?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=10) as response:
        lines = response.read().decode().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


@dataclass
class Notification:
    receiver: str
    received: float
    body: dict[str, Any]


class WebhookReceiver:
    """Stands in for the pager, chat, ticket and dead man's switch endpoints: records every
    notification Alertmanager posts, by receiver (the URL path)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.notifications: list[Notification] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                with outer._lock:
                    outer.notifications.append(
                        Notification(self.path.strip("/"), time.time(), body)
                    )
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer((host, port), Handler)
        self.url = f"http://{host}:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def received(self, receiver: str) -> list[Notification]:
        with self._lock:
            return [n for n in self.notifications if n.receiver == receiver]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="session")
def webhooks() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    try:
        yield receiver
    finally:
        receiver.close()


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, webhooks: WebhookReceiver) -> Iterator[Stack]:
    env = dict(os.environ)
    env.setdefault("PULSE_STACK_PORT_OFFSET", str(STACK_PORT_OFFSET))
    env.setdefault("PROMETHEUS_EVAL_INTERVAL", "5s")
    env.setdefault("PROMETHEUS_SCRAPE_INTERVAL", "5s")
    # Shorter Alertmanager timings than on-call's; the same routes, receivers and rules.
    env.setdefault("ALERTMANAGER_GROUP_WAIT", "5s")
    env.setdefault("ALERTMANAGER_GROUP_INTERVAL", "10s")
    env["PULSE_ALERT_WEBHOOK_BASE"] = webhooks.url
    local = Stack(tmp_path_factory.mktemp("stack"), env)
    local.up(progress=lambda line: print(line, file=sys.stderr, flush=True))
    try:
        yield local
    finally:
        local.down()


@dataclass
class LivePulse:
    grpc_address: str
    admin_url: str
    server: subprocess.Popen
    loadgen: subprocess.Popen
    started: float


def _telemetry_env(stack: Stack) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PULSE_", "OTEL_"))}
    env.update(
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://{stack.url('otlp_grpc')}",
        OTEL_EXPORTER_OTLP_INSECURE="true",
        OTEL_METRIC_EXPORT_INTERVAL="2000",
        OTEL_BSP_SCHEDULE_DELAY="500",
        OTEL_BLRP_SCHEDULE_DELAY="500",
        PULSE_TELEMETRY_ENVIRONMENT="e2e",
    )
    return env


@pytest.fixture(scope="session")
def pulse_live(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LivePulse]:
    """Pulse exporting to the stack, with fault injection on, and the load generator running."""
    yield from _run_pulse(stack, tmp_path_factory, {"PULSE_FAULTS_ENABLED": "true"})


@pytest.fixture
def pulse_shared(
    stack: Stack, engines: Engines, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LivePulse]:
    """A second Pulse, on the shared engines (PostgreSQL, NATS JetStream), exporting to the same
    stack under load, for as long as one test needs its database and bus telemetry."""
    database = asyncio.run(fresh_database(engines))
    stream = fresh_stream()
    try:
        yield from _run_pulse(
            stack,
            tmp_path_factory,
            {
                "PULSE_SENSORS_DATABASE_URL": database,
                "PULSE_BUS_URL": engines.nats_url,
                "PULSE_BUS_STREAM": stream,
                "PULSE_BUS_SUBJECT": f"pulse.{stream}",
                "PULSE_BUS_MAX_BYTES": str(64 * 1024 * 1024),
            },
        )
    finally:
        asyncio.run(drop(engines, database, stream))


def _run_pulse(
    stack: Stack, tmp_path_factory: pytest.TempPathFactory, settings: dict[str, str]
) -> Iterator[LivePulse]:
    grpc_port, admin_port = free_port(), free_port()
    env = _telemetry_env(stack)
    server_env = {
        **env,
        "PULSE_GRPC_HOST": "127.0.0.1",
        "PULSE_GRPC_PORT": str(grpc_port),
        "PULSE_ADMIN_HOST": "127.0.0.1",
        "PULSE_ADMIN_PORT": str(admin_port),
        "PULSE_DATA_DIR": str(tmp_path_factory.mktemp("pulse-data")),
        "PULSE_TELEMETRY_ENVIRONMENT": "e2e",
        "PULSE_GRPC_SHUTDOWN_GRACE_S": "2",
        **settings,
    }
    logs = tmp_path_factory.mktemp("pulse-logs")
    server = subprocess.Popen(
        [sys.executable, "-m", "pulse", "serve"],
        env=server_env,
        stdout=(logs / "pulse.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    admin_url = f"http://127.0.0.1:{admin_port}"
    eventually(
        lambda: http_json(admin_url + "/readyz")["status"] == "ready", "pulse ready", 60, 0.3
    )
    loadgen = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pulse",
            "loadgen",
            "--target",
            f"127.0.0.1:{grpc_port}",
            "--seed",
            "7",
            "--unary-interval",
            "0.5",
        ],
        env=env,
        stdout=(logs / "loadgen.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    live = LivePulse(f"127.0.0.1:{grpc_port}", admin_url, server, loadgen, time.time())
    try:
        yield live
    finally:
        for process in (loadgen, server):
            process.send_signal(signal.SIGTERM)
        for process in (loadgen, server):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
