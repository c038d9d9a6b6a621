"""Processes of a benchmark run: Pulse, the baselines and a live collector, each on loopback
ports the kernel picks, each in a process of its own so its CPU and memory are measured alone."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil

__all__ = ["Collector", "Proc", "baseline", "collector", "cpu_seconds", "free_port", "pulse"]

REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, process: subprocess.Popen, timeout: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode} before listening")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port} after {timeout:.0f} s")


@dataclass
class Proc:
    port: int
    process: psutil.Process


@contextmanager
def _process(
    args: list[str], port: int, env: dict[str, str] | None = None, log: Path | None = None
) -> Iterator[Proc]:
    out = open(log, "wb") if log is not None else subprocess.DEVNULL  # noqa: SIM115
    process = subprocess.Popen(
        args, env={**os.environ, **(env or {})}, stdout=out, stderr=subprocess.STDOUT, cwd=REPO
    )
    try:
        _wait_port(port, process)
        yield Proc(port, psutil.Process(process.pid))
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if log is not None:
            out.close()


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


# The benchmark measures the pipeline, not the rate limits: they are on, with rates no run
# reaches, so every entry still goes through them.
_UNLIMITED = dict.fromkeys(
    (
        "PULSE_INGEST_GLOBAL_RATE",
        "PULSE_INGEST_GLOBAL_BURST",
        "PULSE_INGEST_SOURCE_RATE",
        "PULSE_INGEST_SOURCE_BURST",
        "PULSE_INGEST_TASK_RATE",
        "PULSE_INGEST_TASK_BURST",
    ),
    "1e9",
)


@contextmanager
def pulse(
    tmp: Path,
    *,
    instrumented: bool = True,
    otlp_endpoint: str | None = None,
    log_records: bool = False,
    **env: str,
) -> Iterator[Proc]:
    """``pulse serve`` with its default limits and redaction. ``otlp_endpoint``: export traces,
    metrics and (with ``log_records``) ingested entries there; ``instrumented=False`` runs the
    same server with no-op OpenTelemetry providers (``bench.uninstrumented``)."""
    port = free_port()
    tmp.mkdir(parents=True, exist_ok=True)
    settings = {
        "PULSE_GRPC_HOST": "127.0.0.1",
        "PULSE_GRPC_PORT": str(port),
        "PULSE_ADMIN_HOST": "127.0.0.1",
        "PULSE_ADMIN_PORT": str(free_port()),
        "PULSE_DATA_DIR": str(tmp),
        "PULSE_TELEMETRY_LOG_LEVEL": "WARNING",
        "PULSE_METRICS_MAX_STREAMS": "5000",
        "PULSE_MONITOR_MAX_SUBSCRIBERS": "5000",
        "PULSE_GRPC_MAX_CONCURRENT_STREAMS": "5000",
        "PULSE_TELEMETRY_ENABLED": "true" if otlp_endpoint else "false",
        "PULSE_INGEST_EMIT_LOG_RECORDS": "true" if log_records else "false",
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_endpoint or f"http://127.0.0.1:{free_port()}",
        **_UNLIMITED,
        **env,
    }
    module = "pulse" if instrumented else "bench.uninstrumented"
    args = (
        [sys.executable, "-m", module, "serve"] if instrumented else [sys.executable, "-m", module]
    )
    with _process(args, port, settings, tmp / "pulse.log") as proc:
        yield proc


@contextmanager
def baseline(kind: str, *more_ports: int) -> Iterator[Proc]:
    """One of ``bench.baselines``' bare servers, on a port of its own (and ``more_ports``)."""
    port = free_port()
    args = [sys.executable, "-m", "bench.baselines", kind, str(port), *map(str, more_ports)]
    with _process(args, port) as proc:
        yield proc


@dataclass
class Collector:
    otlp_endpoint: str
    metrics_url: str
    process: psutil.Process
    logs_backend: psutil.Process | None = None


def _binary(name: str) -> str:
    build = REPO / "deploy" / "local" / "build.sh"
    print(f"  {name}: deploy/local/build.sh path {name} (builds it on first use) …", flush=True)
    done = subprocess.run(["bash", str(build), "path", name], check=True, capture_output=True)
    return done.stdout.decode().strip().splitlines()[-1]


@contextmanager
def _victorialogs(tmp: Path) -> Iterator[Proc]:
    """VictoriaLogs as the local stack runs it, on a port and in a directory of its own."""
    port = free_port()
    args = [
        _binary("victorialogs"),
        f"-httpListenAddr=127.0.0.1:{port}",
        f"-storageDataPath={tmp / 'victorialogs'}",
        "-retentionPeriod=100y",
        "-futureRetention=100y",
        "-loggerLevel=WARN",
    ]
    with _process(args, port, log=tmp / "victorialogs.log") as proc:
        yield proc


@contextmanager
def collector(tmp: Path, victorialogs: bool = False) -> Iterator[Collector]:
    """The project's collector (deploy/otel-collector/config.yaml, its queues on disk) receiving
    on loopback; its exporters send to ``bench.baselines otlp-sink``, which acknowledges
    everything, so the figures are Pulse's and the collector's, not a backend's; with
    ``victorialogs`` its logs go to a VictoriaLogs of their own."""
    binary = _binary("otelcol")
    tmp.mkdir(parents=True, exist_ok=True)
    grpc_port, metrics_port, sink_grpc_port = free_port(), free_port(), free_port()
    with ExitStack() as stack:
        sink = stack.enter_context(baseline("otlp-sink", sink_grpc_port))
        logs = stack.enter_context(_victorialogs(tmp)) if victorialogs else None
        sink_http, sink_grpc = f"http://127.0.0.1:{sink.port}", f"127.0.0.1:{sink_grpc_port}"
        logs_url = f"http://127.0.0.1:{logs.port}/insert/opentelemetry" if logs else sink_http
        env = {
            "OTELCOL_OTLP_GRPC_ENDPOINT": f"127.0.0.1:{grpc_port}",
            "OTELCOL_OTLP_HTTP_ENDPOINT": f"127.0.0.1:{free_port()}",
            "OTELCOL_HEALTH_ENDPOINT": f"127.0.0.1:{free_port()}",
            "OTELCOL_METRICS_PORT": str(metrics_port),
            "OTELCOL_STORAGE_DIR": str(tmp / "queue"),
            "JAEGER_OTLP_ENDPOINT": sink_grpc,
            "PROMETHEUS_OTLP_ENDPOINT": sink_http,
            "LOGS_OTLP_ENDPOINT": logs_url,
        }
        config = REPO / "deploy" / "otel-collector" / "config.yaml"
        args = [binary, f"--config={config}"]
        with _process(args, grpc_port, env, tmp / "otelcol.log") as proc:
            yield Collector(
                f"http://127.0.0.1:{grpc_port}",
                f"http://127.0.0.1:{metrics_port}/metrics",
                proc.process,
                logs.process if logs else None,
            )
