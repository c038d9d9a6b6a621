"""``make bench``: Pulse against baselines measured in the same run, printed as ratios.

``python -m bench [ingest|telemetry|streams|memory|micro ...]`` runs some sections only.

Every server runs in a process of its own (``bench.processes``) so its CPU and memory are
measured alone; every baseline is the least a bare grpc.aio server (``bench.baselines``) or
bare asyncio does for the same work. Figures vary with the machine and its load; only the
ratios are meant to be compared. ``BENCH_REPEAT=N`` (``make bench REPEAT=N``) runs everything
N times and reports the median of each figure.
"""

from __future__ import annotations

import asyncio
import gc
import os
import platform
import statistics
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

from bench import micro, scaled
from bench.processes import baseline, collector, cpu_seconds, pulse
from bench.workloads import (
    IDLE_STREAMS,
    INGEST_SECONDS,
    STREAMS,
    asyncio_schedule_lags,
    batches,
    forward_rate,
    idle_stream_bytes,
    ingest_rate,
    p99,
    stream_lags,
)

# figure -> (what it is, the figure before this work, target, "min" or "max")
TARGETS = {
    "ingest": (
        "ingest, embedded, redaction + limits on, forwarding off / bare sink",
        0.17,
        0.5,
        "min",
    ),
    "fanout": (
        "same with 10 Monitor subscribers matching everything / bare sink",
        0.07,
        0.35,
        "min",
    ),
    "instrumentation": (
        "Pulse's own instrumentation on / off (forwarding off in both)",
        None,
        0.9,
        "min",
    ),
    "forwarding": ("ingest with forwarding to a live collector / forwarding off", 0.18, 0.8, "min"),
    "forwarder": ("  the same, from the forwarder's CPU per entry (same run)", 0.18, 0.8, "min"),
    "stream_cpu": ("StreamMetrics CPU per sample / bare grpc.aio stream", None, 1.3, "max"),
    "stream_lag": (f"{STREAMS} streams p99 schedule lag / bare asyncio schedule", 2.6, 1.5, "max"),
    "idle_memory": ("idle Monitor stream memory / bare grpc.aio bidi stream", None, 1.3, "max"),
}


def _line(label: str, value: str, ratio: float | None = None, base: str = "") -> None:
    tail = f"= {ratio:5.2f} x {base}" if ratio is not None else "(baseline)"
    print(f"  {label:<40} {value:>18}  {tail}", flush=True)


async def _ingest(tmp: Path, figures: dict[str, list[float]]) -> None:
    print("[1/7] ingest, batches of 100, one stream: bare grpc.aio sink vs Pulse …", flush=True)
    with baseline("sink") as sink:
        bare = await ingest_rate(sink.port)
    with pulse(tmp / "ingest", instrumented=True) as server:
        plain = await ingest_rate(server.port)
        fanned = await ingest_rate(server.port, subscribers=10)
    _line("bare sink", f"{bare:,.0f} entries/s")
    _line("Pulse", f"{plain:,.0f} entries/s", plain / bare, "bare sink")
    _line("Pulse, 10 Monitor subscribers", f"{fanned:,.0f} entries/s", fanned / bare, "bare sink")
    figures["ingest"].append(plain / bare)
    figures["fanout"].append(fanned / bare)


async def _telemetry(tmp: Path, figures: dict[str, list[float]]) -> None:
    print("[2/7] ingest with telemetry to a live collector …", flush=True)
    with pulse(tmp / "off", instrumented=False) as server:
        off = await ingest_rate(server.port)
    with collector(tmp / "collector") as live:
        with pulse(tmp / "on", otlp_endpoint=live.otlp_endpoint) as server:
            cpu0 = cpu_seconds(server.process)
            on = await ingest_rate(server.port)
            ingest_cpu = (cpu_seconds(server.process) - cpu0) / (on * INGEST_SECONDS)
        with pulse(tmp / "fwd", otlp_endpoint=live.otlp_endpoint, log_records=True) as server:
            forwarding = await ingest_rate(server.port)
    with collector(tmp / "collector-vl", victorialogs=True) as live:
        assert live.logs_backend is not None
        collector0, backend0 = cpu_seconds(live.process), cpu_seconds(live.logs_backend)
        forwarded, forward_cpu, count = await forward_rate(
            live.otlp_endpoint.removeprefix("http://")
        )
        await asyncio.sleep(2)  # the collector's batch and queue hand the last ones on
        collector_cpu = (cpu_seconds(live.process) - collector0) / count
        backend_cpu = (cpu_seconds(live.logs_backend) - backend0) / count
    _line("instrumentation off (no-op providers)", f"{off:,.0f} entries/s")
    _line("instrumentation on, exported", f"{on:,.0f} entries/s", on / off, "off")
    _line("forwarding to the collector", f"{forwarding:,.0f} entries/s", forwarding / on, "off")
    _line("forwarder alone into VictoriaLogs", f"{forwarded:,.0f} entries/s")
    predicted = ingest_cpu / (ingest_cpu + forward_cpu)
    print(
        f"  CPU per entry: Pulse ingest {ingest_cpu * 1e6:.2f} us, its forwarder "
        f"{forward_cpu * 1e6:.2f} us (in one process {predicted:.2f} x forwarding off), "
        f"collector {collector_cpu * 1e6:.2f} us, VictoriaLogs {backend_cpu * 1e6:.2f} us",
        flush=True,
    )
    figures["instrumentation"].append(on / off)
    figures["forwarding"].append(forwarding / on)
    figures["forwarder"].append(predicted)
    for key, value in (
        ("ingest_us", ingest_cpu),
        ("forwarder_us", forward_cpu),
        ("collector_us", collector_cpu),
        ("victorialogs_us", backend_cpu),
    ):
        figures[key].append(value * 1e6)


async def _streams(tmp: Path, figures: dict[str, list[float]]) -> None:
    print(f"[3/7] {STREAMS} StreamMetrics streams, one sample per 100 ms each …", flush=True)
    base_lags = await asyncio_schedule_lags()
    results = {}
    for name, launch in (("bare", lambda: baseline("stream")), ("pulse", lambda: pulse(tmp / "s"))):
        with launch() as server:
            cpu0 = cpu_seconds(server.process)
            lags = await stream_lags(server.port)
            results[name] = (lags, (cpu_seconds(server.process) - cpu0) / len(lags))
    (bare_lags, bare_cpu), (lags, cpu) = results["bare"], results["pulse"]
    _line("bare asyncio schedule, p99 lag", f"{p99(base_lags) * 1000:.1f} ms")
    _line(
        "bare grpc.aio stream, p99 lag",
        f"{p99(bare_lags) * 1000:.1f} ms",
        p99(bare_lags) / p99(base_lags),
        "asyncio",
    )
    _line("Pulse, p99 lag", f"{p99(lags) * 1000:.1f} ms", p99(lags) / p99(base_lags), "asyncio")
    _line("bare grpc.aio stream, CPU per sample", f"{bare_cpu * 1e6:.0f} us")
    _line("Pulse, CPU per sample", f"{cpu * 1e6:.0f} us", cpu / bare_cpu, "bare stream")
    figures["stream_lag"].append(p99(lags) / p99(base_lags))
    figures["stream_us"].append(cpu * 1e6)
    figures["stream_cpu"].append(cpu / bare_cpu)


async def _bus(tmp: Path, figures: dict[str, list[float]]) -> None:
    print("[5/7] ingest through the NATS JetStream bus vs bare nats-py publish …", flush=True)
    engines = scaled.engines(tmp)
    try:
        bare_bus = await scaled.bare_publish_rate(engines, batches(), INGEST_SECONDS)
        with pulse(tmp / "bus", **scaled.bus_env(engines, "BENCH_INGEST")) as server:
            on_bus = await ingest_rate(server.port)
        _line("bare nats-py publish", f"{bare_bus:,.0f} entries/s")
        _line("Pulse on the bus", f"{on_bus:,.0f} entries/s", on_bus / bare_bus, "bare publish")
        print(
            f"[6/7] Monitor delivery lag, {scaled.LAG_BATCHES_PER_S} batches/s: "
            "one embedded process vs ingest on A, Monitor on B …",
            flush=True,
        )
        with pulse(tmp / "alone") as server:
            alone = await scaled.delivery_lags(server.port, server.port)
        env = scaled.bus_env(engines, "BENCH_LAG")
        with pulse(tmp / "a", **env) as a, pulse(tmp / "b", **env) as b:
            across = await scaled.delivery_lags(a.port, b.port)
    finally:
        scaled.stop(engines)
    p50_alone, p50_across = statistics.median(alone), statistics.median(across)
    _line("one process (ring), p50 / p99", f"{p50_alone * 1e3:.2f} / {p99(alone) * 1e3:.2f} ms")
    _line("A to B (bus), p50", f"{p50_across * 1e3:.2f} ms", p50_across / p50_alone, "one process")
    _line(
        "A to B (bus), p99", f"{p99(across) * 1e3:.2f} ms", p99(across) / p99(alone), "one process"
    )
    figures["bus_ingest"].append(on_bus / bare_bus)


async def _memory(tmp: Path, figures: dict[str, list[float]]) -> None:
    print(f"[4/7] memory of {IDLE_STREAMS} idle Monitor streams …", flush=True)
    per = {}
    for name, launch in (("bare", lambda: baseline("bidi")), ("pulse", lambda: pulse(tmp / "m"))):
        with launch() as server:
            per[name] = await idle_stream_bytes(server.port, server.process)
    _line("bare grpc.aio bidi stream", f"{per['bare'] / 1024:.1f} KiB/stream")
    _line(
        "Pulse Monitor stream",
        f"{per['pulse'] / 1024:.1f} KiB/stream",
        per["pulse"] / per["bare"],
        "bare bidi",
    )
    figures["idle_memory"].append(per["pulse"] / per["bare"])
    figures["idle_kib"].append(per["pulse"] / 1024)


def _summary(figures: dict[str, list[float]], runs: int) -> None:
    print(f"\nSummary: medians of {runs} run(s), {_machine()}")
    print(f"  {'figure':<72} {'before':>6} {'target':>8} {'now':>6}")
    for key, (label, before, target, kind) in TARGETS.items():
        if not figures[key]:
            continue
        now = statistics.median(figures[key])
        sign = ">=" if kind == "min" else "<="
        met = now >= target if kind == "min" else now <= target
        shown = f"{before:.2f}" if before is not None else "-"
        print(f"  {label:<72} {shown:>6} {sign} {target:<5} {now:6.2f} {'' if met else '(missed)'}")


# Inputs of docs/capacity.md: medians of what one entry or sample costs where.
PER_UNIT = {
    "ingest_us": "Pulse, CPU per entry ingested (instrumented, forwarding off)",
    "forwarder_us": "Pulse's forwarder, CPU per entry forwarded",
    "collector_us": "collector, CPU per entry into VictoriaLogs",
    "victorialogs_us": "VictoriaLogs, CPU per entry stored",
    "stream_us": "Pulse, CPU per StreamMetrics sample",
    "idle_kib": "Pulse, memory per idle Monitor stream (KiB)",
}


def _per_unit(figures: dict[str, list[float]]) -> None:
    shown = [(label, figures[key]) for key, label in PER_UNIT.items() if figures[key]]
    if shown:
        print("  cost per unit (medians):")
    for label, values in shown:
        print(f"    {label:<62} {statistics.median(values):8.2f}")


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


SECTIONS = {
    "ingest": _ingest,
    "telemetry": _telemetry,
    "streams": _streams,
    "memory": _memory,
    "bus": _bus,
}


async def main(names: list[str]) -> None:
    unknown = sorted(set(names) - {*SECTIONS, "micro"})
    if unknown:
        raise SystemExit(f"unknown sections {unknown}; known: {[*SECTIONS, 'micro']}")
    chosen = names or [*SECTIONS, "micro"]
    runs = int(os.environ.get("BENCH_REPEAT", "1"))
    print(
        f"Pulse benchmarks on {_machine()}; every figure is a ratio to a baseline measured "
        "in the same run.\n",
        flush=True,
    )
    figures: dict[str, list[float]] = defaultdict(list)
    with tempfile.TemporaryDirectory(prefix="pulse-bench-") as tmp:
        for run in range(runs):
            if runs > 1:
                print(f"--- run {run + 1} of {runs}", flush=True)
            root = Path(tmp) / f"run-{run}"
            for name, section in SECTIONS.items():
                if name in chosen:
                    # This process measures too (lags on receipt): what earlier sections left
                    # must not be walked by its collector in the middle of a measurement.
                    gc.collect()
                    gc.freeze()
                    await section(root, figures)
    if "micro" in chosen:
        print("[7/7] what each instrument costs on the hot paths (this process, SDK providers) …")
        micro.report()
    _summary(figures, runs)
    _per_unit(figures)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
