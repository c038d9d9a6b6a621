"""``make bench``: Pulse against baselines measured in the same run, printed as ratios.

Every server runs in a process of its own so its CPU and memory are measured alone.
Figures vary with the machine; only the ratios are meant to be compared.
"""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import psutil

from bench import scaled
from pulse.v1 import logs_pb2, logs_pb2_grpc, metrics_pb2, metrics_pb2_grpc

BATCH = 100
INGEST_SECONDS = 5.0
STREAMS = 500
STREAM_SECONDS = 10.0
IDLE_STREAMS = 1000


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


@contextmanager
def _process(args: list[str], port: int, env: dict[str, str] | None = None):
    full_env = {**os.environ, **(env or {})}
    process = subprocess.Popen(
        [sys.executable, *args], env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait_port(port)
        yield psutil.Process(process.pid)
    finally:
        process.terminate()
        process.wait(timeout=30)


@contextmanager
def pulse(telemetry: bool, tmp: Path, **env: str):
    port = _port()
    settings = {
        "PULSE_GRPC_HOST": "127.0.0.1",
        "PULSE_GRPC_PORT": str(port),
        "PULSE_ADMIN_HOST": "127.0.0.1",
        "PULSE_ADMIN_PORT": str(_port()),
        "PULSE_DATA_DIR": str(tmp),
        "PULSE_TELEMETRY_LOG_LEVEL": "WARNING",
        # The benchmark measures the pipeline, not the rate limits.
        "PULSE_INGEST_GLOBAL_RATE": "1e9",
        "PULSE_INGEST_GLOBAL_BURST": "1e9",
        "PULSE_INGEST_SOURCE_RATE": "1e9",
        "PULSE_INGEST_SOURCE_BURST": "1e9",
        "PULSE_INGEST_TASK_RATE": "1e9",
        "PULSE_INGEST_TASK_BURST": "1e9",
        "PULSE_METRICS_MAX_STREAMS": "5000",
        "PULSE_MONITOR_MAX_SUBSCRIBERS": "5000",
        "PULSE_GRPC_MAX_CONCURRENT_STREAMS": "5000",
        # Telemetry on: the SDK records and exports to an endpoint nobody listens on, which
        # costs what a live collector costs the process (export is batched and bounded).
        "PULSE_TELEMETRY_ENABLED": "true" if telemetry else "false",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{_port()}",
        **env,
    }
    with _process(["-m", "pulse", "serve"], port, settings) as proc:
        yield port, proc


@contextmanager
def sink():
    port = _port()
    with _process(["-m", "bench.sink", str(port)], port) as proc:
        yield port, proc


def _batch(i: int) -> logs_pb2.IngestRequest:
    entries = [
        logs_pb2.LogEntry(
            source=f"src-{j % 8}",
            task_id=f"t-{j % 50}",
            severity=9,
            message=f"GET /api/orders/{i}-{j} 200 in 12ms user=42",
        )
        for j in range(BATCH)
    ]
    return logs_pb2.IngestRequest(entries=entries)


async def ingest_rate(port: int, subscribers: int = 0) -> float:
    """Entries per second through one Ingest stream for INGEST_SECONDS."""
    batches = [_batch(i) for i in range(50)]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = logs_pb2_grpc.LogServiceStub(channel)
        monitors = []
        stop = asyncio.Event()

        async def one_filter() -> AsyncIterator[logs_pb2.LogFilter]:
            yield logs_pb2.LogFilter()
            await stop.wait()

        async def drain(call) -> None:
            async for _ in call:
                pass

        for _ in range(subscribers):
            monitors.append(asyncio.create_task(drain(stub.Monitor(one_filter()))))
        await asyncio.sleep(0.5)
        sent = 0
        end = time.perf_counter() + INGEST_SECONDS
        started = time.perf_counter()

        async def requests() -> AsyncIterator[logs_pb2.IngestRequest]:
            nonlocal sent
            i = 0
            while time.perf_counter() < end:
                yield batches[i % len(batches)]
                sent += BATCH
                i += 1

        reply = await stub.Ingest(requests())
        elapsed = time.perf_counter() - started
        stop.set()
        for task in monitors:
            task.cancel()
        await asyncio.gather(*monitors, return_exceptions=True)
    return reply.accepted / elapsed


async def stream_lag(port: int) -> tuple[list[float], float]:
    """p99 lag of STREAMS StreamMetrics streams at 100 ms (one type, one source each)."""
    lags: list[float] = []
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = metrics_pb2_grpc.MetricsServiceStub(channel)
        request = metrics_pb2.StreamMetricsRequest(
            metric_types=["cpu_usage"], interval_ms=100, label_filters={"host": "host-01"}
        )
        end = time.time() + STREAM_SECONDS

        async def one() -> None:
            call = stub.StreamMetrics(request)
            async for sample in call:
                lags.append(time.time() - sample.time.ToNanoseconds() / 1e9)
                if time.time() > end:
                    call.cancel()
                    return

        await asyncio.gather(*(one() for _ in range(STREAMS)), return_exceptions=True)
    return lags, STREAM_SECONDS


async def baseline_lag() -> list[float]:
    """The same schedule with bare asyncio sleeps in this process: the loop's own lateness."""
    lags: list[float] = []
    end = time.monotonic() + STREAM_SECONDS

    async def one() -> None:
        start = time.monotonic()
        i = 0
        while time.monotonic() < end:
            due = start + i * 0.1
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            lags.append(time.monotonic() - due)
            i += 1

    await asyncio.gather(*(one() for _ in range(STREAMS)))
    return lags


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) > 1 else float("nan")


async def idle_memory(port: int, proc: psutil.Process) -> tuple[float, float]:
    before = proc.memory_info().rss
    stop = asyncio.Event()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = logs_pb2_grpc.LogServiceStub(channel)

        async def quiet() -> AsyncIterator[logs_pb2.LogFilter]:
            yield logs_pb2.LogFilter(pattern="^never-matches$")
            await stop.wait()

        calls = [stub.Monitor(quiet()) for _ in range(IDLE_STREAMS)]
        await asyncio.sleep(3)
        after = proc.memory_info().rss
        stop.set()
        for call in calls:
            call.cancel()
    return before, after


def _cpu(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return times.user + times.system


async def main() -> None:
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"pulse-bench-{os.getpid()}"
    tmp.mkdir(parents=True, exist_ok=True)
    print(
        f"Pulse benchmarks ({os.cpu_count()} cores); each figure is a ratio to a baseline "
        "measured in this run.\n",
        flush=True,
    )

    print("[1/6] ingest: bare grpc.aio sink vs Pulse, batches of 100 …", flush=True)
    with sink() as (port, _):
        bare = await ingest_rate(port)
    with pulse(False, tmp / "a") as (port, _):
        plain = await ingest_rate(port)
        fanned = await ingest_rate(port, subscribers=10)
    print(f"  bare sink            {bare:12,.0f} entries/s  (baseline)")
    print(f"  Pulse, 0 subscribers {plain:12,.0f} entries/s  = {plain / bare:.2f} x baseline")
    print(
        f"  Pulse, 10 subscribers{fanned:12,.0f} entries/s  = {fanned / bare:.2f} x baseline",
        flush=True,
    )

    print("[2/6] ingest: telemetry on vs off …", flush=True)
    with pulse(True, tmp / "b") as (port, _):
        on = await ingest_rate(port)
    print(f"  telemetry off        {plain:12,.0f} entries/s  (baseline)")
    print(
        f"  telemetry on         {on:12,.0f} entries/s  = {on / plain:.2f} x baseline", flush=True
    )

    print(
        f"[3/6] {STREAMS} StreamMetrics streams at 100 ms for {STREAM_SECONDS:.0f}s …", flush=True
    )
    base = await baseline_lag()
    with pulse(False, tmp / "c") as (port, proc):
        cpu0 = _cpu(proc)
        lags, seconds = await stream_lag(port)
        cpu = (_cpu(proc) - cpu0) / seconds
    print(f"  bare asyncio schedule p99 lag {p99(base) * 1000:8.1f} ms  (baseline)")
    print(
        f"  Pulse p99 schedule lag        {p99(lags) * 1000:8.1f} ms  = "
        f"{p99(lags) / max(p99(base), 1e-6):.1f} x baseline; server CPU {cpu:.2f} cores; "
        f"{len(lags) / seconds:,.0f} samples/s",
        flush=True,
    )

    print(f"[4/6] memory of {IDLE_STREAMS} idle Monitor streams …", flush=True)
    with pulse(False, tmp / "d") as (port, proc):
        before, after = await idle_memory(port, proc)
    per_stream = (after - before) / IDLE_STREAMS
    print(f"  idle server RSS {before / 2**20:8.1f} MiB  (baseline)")
    print(
        f"  with {IDLE_STREAMS} streams {after / 2**20:8.1f} MiB  = {after / before:.2f} x "
        f"baseline; {per_stream / 1024:.1f} KiB per stream",
        flush=True,
    )

    print("[5/6] ingest through the NATS JetStream bus vs bare nats-py publish …", flush=True)
    engines = scaled.engines(tmp)
    try:
        batches = [_batch(i) for i in range(50)]
        bare_bus = await scaled.bare_publish_rate(engines, batches, INGEST_SECONDS)
        with pulse(False, tmp / "e", **scaled.bus_env(engines, "BENCH_INGEST")) as (port, _):
            on_bus = await ingest_rate(port)
        print(f"  bare nats-py publish {bare_bus:12,.0f} entries/s  (baseline)")
        print(
            f"  Pulse on the bus     {on_bus:12,.0f} entries/s  = {on_bus / bare_bus:.2f} x "
            f"baseline; {on_bus / plain:.2f} x Pulse on its ring",
            flush=True,
        )

        print(
            f"[6/6] Monitor delivery lag, {scaled.LAG_BATCHES_PER_S} batches/s: "
            "one embedded process vs ingest on A, Monitor on B …",
            flush=True,
        )
        with pulse(False, tmp / "f") as (port, _):
            alone = await scaled.delivery_lags(port, port)
        env = scaled.bus_env(engines, "BENCH_LAG")
        with (
            pulse(False, tmp / "g", **env) as (port_a, _),
            pulse(False, tmp / "h", **env) as (port_b, _),
        ):
            across = await scaled.delivery_lags(port_a, port_b)
        p50_alone, p50_across = statistics.median(alone), statistics.median(across)
        print(
            f"  one process (ring)  p50 {p50_alone * 1000:7.2f} ms  p99 {p99(alone) * 1000:7.2f}"
            f" ms  (baseline; {len(alone)} entries)"
        )
        print(
            f"  A to B (bus)        p50 {p50_across * 1000:7.2f} ms  p99 {p99(across) * 1000:7.2f}"
            f" ms  = p50 {p50_across / p50_alone:.1f} x, p99 {p99(across) / p99(alone):.1f} x "
            f"baseline ({len(across)} entries)",
            flush=True,
        )
    finally:
        scaled.stop(engines)


if __name__ == "__main__":
    asyncio.run(main())
