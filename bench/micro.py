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

from bench.workloads import BATCH, accepted_batches, batches
from pulse.config import MonitorSettings, Settings
from pulse.log_service.buffer import LogBuffer, Subscriber
from pulse.log_service.filters import compile_filter
from pulse.log_service.otlp_logs import BatchContext, OtlpLogEncoder
from pulse.log_service.service import LogServicer
from pulse.telemetry import build_telemetry
from pulse.telemetry.ticks import StreamTick
from pulse.v1 import logs_pb2

__all__ = ["report"]

SAMPLES_PER_TICK = 100  # telemetry.stream_tick_s = 10 s at one sample per 100 ms
PIPELINE_REPEAT = 300  # each run takes fresh entries: the pipeline fills in their times


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
    accepted = accepted_batches(1)[0]
    encoder = OtlpLogEncoder(telemetry.resource)
    fan_out = LogBuffer(10_000, 16 << 20)
    for _ in range(10):
        subscriber = Subscriber(1 << 30, 1 << 40)
        subscriber.replace_filter(compile_filter(logs_pb2.LogFilter(), MonitorSettings()), [])
        fan_out.subscribers.add(subscriber)

    def fan_out_batch() -> None:
        fan_out.extend(accepted, 0.0)
        for subscriber in fan_out.subscribers:
            subscriber.queue.clear()

    ring = LogBuffer(10_000, 16 << 20)
    published = logs_pb2.IngestRequest(entries=accepted).SerializeToString()

    def follow_bus() -> None:
        entries = list(logs_pb2.IngestRequest.FromString(published).entries)
        for position, entry in enumerate(entries):
            entry.sequence = 1_000_000 + position
        ring.extend(entries, 0.0)

    def batch_span() -> None:
        with tracer.start_as_current_span("ingest.batch") as span:
            span.set_attributes({"pulse.ingest.batch_id": "b", "pulse.ingest.entries": BATCH})

    fresh = iter([list(request.entries) for request in batches(PIPELINE_REPEAT + 1)])
    rows = [
        ("span ingest.batch", "Ingest, per batch", BATCH, "entry", batch_span, 5_000),
        ("counter add, 1 attribute", "Ingest, per call tick", BATCH, "entry",
         lambda: i.ingest_entries.add(BATCH, attrs), 20_000),
        ("counter add, no attribute", "Monitor, per response", BATCH, "entry",
         lambda: i.monitor_delivered.add(BATCH), 20_000),
        ("histogram record", "Monitor delivery lag, per response", BATCH, "entry",
         lambda: i.monitor_delivery_lag.record(0.002), 20_000),
        ("histogram record", "StreamMetrics lag, per cycle", 1, "sample",
         lambda: i.metrics_schedule_lag.record(0.002), 20_000),
        ("up-down counter add", "every stream, at start and end", 1, "call",
         lambda: i.active_streams.add(1, attrs), 20_000),
        ("tick span", "every stream, per tick", SAMPLES_PER_TICK, "sample",
         lambda: tick.emit({"pulse.stream.messages_sent": 100}), 5_000),
        ("ingest pipeline (validate, limit, redact)", "Ingest, per batch", BATCH, "entry",
         lambda: servicer.pipeline.process(next(fresh)), PIPELINE_REPEAT),
        ("ring + fan-out, 10 match-all subscribers", "Ingest, per batch", BATCH, "entry",
         fan_out_batch, 2_000),
        ("following the bus: decode, keep in the ring", "every replica, per batch", BATCH,
         "entry", follow_bus, 2_000),
        ("OTLP encoding", "forwarder, per export", BATCH, "entry",
         lambda: encoder.encode([(accepted, BatchContext(), 1)]), 2_000),
    ]  # fmt: skip
    return [Case(*row) for row in rows]


def report() -> None:
    with trace.use_span(trace.INVALID_SPAN):
        rows = [(case, _time(case.call, case.repeat)) for case in _cases()]
    print(f"  {'instrument or path':<46} {'where':<36} {'us/call':>8} {'us per':>12}")
    for case, seconds in rows:
        per = seconds / case.covers * 1e6
        print(f"  {case.what:<46} {case.where:<36} {seconds * 1e6:8.2f} {per:8.3f} {case.unit}")
