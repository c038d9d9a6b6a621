"""What each instrument costs where Pulse calls it, measured in this process with the SDK's
providers as ``pulse serve`` builds them (export off, so only the recording is timed).

The cost per entry or sample is the cost per call divided by what one call covers: a batch of
BATCH entries, a Monitor response of a batch, a stream tick of ``telemetry.stream_tick_s`` at
10 samples per second.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from opentelemetry import trace

from bench.workloads import BATCH
from pulse.config import Settings
from pulse.log_service.log_records import LogRecordEmitter
from pulse.log_service.service import LogServicer
from pulse.telemetry import build_telemetry
from pulse.telemetry.ticks import StreamTick

__all__ = ["report"]

SAMPLES_PER_TICK = 100  # telemetry.stream_tick_s = 10 s at one sample per 100 ms


@dataclass
class Case:
    what: str
    where: str
    covers: int  # entries or samples one call covers
    unit: str
    call: Callable[[], object]
    repeat: int = 20_000


def _time(call: Callable[[], object], repeat: int) -> float:
    call()
    start = time.perf_counter()
    for _ in range(repeat):
        call()
    return (time.perf_counter() - start) / repeat


def _cases() -> list[Case]:
    telemetry = build_telemetry("pulse", "bench", export=False)
    i, tracer = telemetry.instruments, telemetry.tracer
    attrs = {"pulse.ingest.outcome": "accepted"}
    tick = StreamTick(tracer, "metrics.tick", 0.0)
    servicer = LogServicer(Settings(), telemetry)
    batch = [e for request in _one_batch() for e in request.entries]

    def batch_span() -> None:
        with tracer.start_as_current_span("ingest.batch") as span:
            span.set_attributes({"pulse.ingest.batch_id": "b", "pulse.ingest.entries": BATCH})

    emitter = LogRecordEmitter(telemetry.logger_provider)
    return [
        Case("span ingest.batch", "Ingest, per batch", BATCH, "entry", batch_span, 5_000),
        Case(
            "counter add, 1 attribute",
            "Ingest, per batch and outcome",
            BATCH,
            "entry",
            lambda: i.ingest_entries.add(BATCH, attrs),
        ),
        Case(
            "counter add, no attribute",
            "Monitor, per response",
            BATCH,
            "entry",
            lambda: i.monitor_delivered.add(BATCH),
        ),
        Case(
            "histogram record",
            "Monitor delivery lag, per response",
            BATCH,
            "entry",
            lambda: i.monitor_delivery_lag.record(0.002),
        ),
        Case(
            "up-down counter add",
            "every stream, at start and end",
            1,
            "call",
            lambda: i.active_streams.add(1, attrs),
        ),
        Case(
            "tick span",
            "every stream, per tick",
            SAMPLES_PER_TICK,
            "sample",
            lambda: tick.emit({"pulse.stream.messages_sent": 100}),
            5_000,
        ),
        Case(
            "ingest pipeline (validate, limit, redact)",
            "Ingest, per batch",
            BATCH,
            "entry",
            lambda: servicer.pipeline.process(list(batch)),
            2_000,
        ),
        Case(
            "SDK log record per entry (today's forwarding)",
            "Ingest, per entry",
            1,
            "entry",
            lambda: emitter.emit(batch[:1]),
            5_000,
        ),
    ]


def _one_batch():
    from bench.workloads import batches

    return batches(1)


def report() -> None:
    with trace.use_span(trace.INVALID_SPAN):
        rows = [(case, _time(case.call, case.repeat)) for case in _cases()]
    print(f"  {'instrument or path':<46} {'where':<36} {'us/call':>8} {'us per':>12}")
    for case, seconds in rows:
        per = seconds / case.covers * 1e6
        print(f"  {case.what:<46} {case.where:<36} {seconds * 1e6:8.2f} {per:8.3f} {case.unit}")
