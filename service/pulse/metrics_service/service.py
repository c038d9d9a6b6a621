"""MetricsService: StreamMetrics (server streaming) and ListMetricTypes."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from pulse.config import Settings
from pulse.metrics_service.fleet import Source, build_fleet, matching
from pulse.metrics_service.schedule import Clock, SystemClock, slots
from pulse.metrics_service.signals import SIGNALS
from pulse.telemetry import Telemetry
from pulse.telemetry.ticks import StreamTick
from pulse.v1 import metrics_pb2, metrics_pb2_grpc
from pulse.validation import echo

__all__ = ["DEFAULT_TYPES", "MetricsComponent", "MetricsServicer"]

_log = logging.getLogger("pulse.metrics")

DEFAULT_TYPES = ("cpu_usage", "memory_usage", "network_io")
MIN_INTERVAL_MS, MAX_INTERVAL_MS, DEFAULT_INTERVAL_MS = 100, 60_000, 1000
MAX_FILTERS, MAX_FILTER_CHARS = 16, 128


class _Invalid(Exception):
    """A request that cannot be served; the message names the field."""


class _StreamPlan:
    def __init__(self, types: list[str], sources: list[Source], interval_s: float) -> None:
        self.types, self.sources, self.interval_s = types, sources, interval_s
        self.pairs = [(s, SIGNALS[t]) for s in sources for t in types]


class MetricsServicer(metrics_pb2_grpc.MetricsServiceServicer):
    def __init__(
        self, settings: Settings, telemetry: Telemetry, clock: Clock | None = None
    ) -> None:
        self._settings = settings.metrics
        self._tick_s = settings.telemetry.stream_tick_s
        self._telemetry = telemetry
        self._clock = clock or SystemClock()
        self._fleet = build_fleet(self._settings.hosts, self._settings.regions)
        self.active = 0

    async def ListMetricTypes(
        self, request: metrics_pb2.ListMetricTypesRequest, context: grpc.aio.ServicerContext
    ) -> metrics_pb2.ListMetricTypesResponse:
        return metrics_pb2.ListMetricTypesResponse(
            types=[
                metrics_pb2.MetricType(name=s.name, unit=s.unit, description=s.description)
                for s in SIGNALS.values()
            ]
        )

    async def StreamMetrics(
        self, request: metrics_pb2.StreamMetricsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[metrics_pb2.MetricData]:
        try:
            plan = self._plan(request)
        except _Invalid as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        if self.active >= self._settings.max_streams:
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"too many StreamMetrics calls: limit is {self._settings.max_streams}",
            )
        self.active += 1
        try:
            async for message in self._stream(plan):
                yield message
        finally:
            self.active -= 1

    def _plan(self, request: metrics_pb2.StreamMetricsRequest) -> _StreamPlan:
        types = list(request.metric_types) or list(DEFAULT_TYPES)
        allowed = ", ".join(SIGNALS)
        for i, name in enumerate(types):
            if name not in SIGNALS:
                raise _Invalid(f"metric_types[{i}]: unknown type {echo(name)}; allowed: {allowed}")
        if len(set(types)) != len(types):
            raise _Invalid("metric_types: each type may appear once")
        interval = request.interval_ms or DEFAULT_INTERVAL_MS
        if not MIN_INTERVAL_MS <= interval <= MAX_INTERVAL_MS:
            raise _Invalid(
                f"interval_ms: {interval} is outside [{MIN_INTERVAL_MS}, {MAX_INTERVAL_MS}] "
                f"(0 means {DEFAULT_INTERVAL_MS})"
            )
        filters = dict(request.label_filters)
        if len(filters) > MAX_FILTERS:
            raise _Invalid(f"label_filters: at most {MAX_FILTERS} pairs")
        for key, value in filters.items():
            if len(key) > MAX_FILTER_CHARS or len(value) > MAX_FILTER_CHARS:
                raise _Invalid(
                    f"label_filters[{echo(key)}]: keys and values are at most "
                    f"{MAX_FILTER_CHARS} characters"
                )
        sources = matching(self._fleet, filters)
        if not sources:
            raise _Invalid(
                f"label_filters: no source matches {echo(filters)}; "
                f"known labels: {self._known_labels()}"
            )
        return _StreamPlan(types, sources, interval / 1000)

    def _known_labels(self) -> str:
        values: dict[str, set[str]] = {}
        for source in self._fleet:
            for key, value in source.labels.items():
                values.setdefault(key, set()).add(value)
        return "; ".join(f"{k}={','.join(sorted(v))}" for k, v in sorted(values.items()))

    async def _stream(self, plan: _StreamPlan) -> AsyncIterator[metrics_pb2.MetricData]:
        instruments = self._telemetry.instruments
        seed = self._settings.seed
        per_cycle = len(plan.pairs)
        sequence = 0
        cycle_lag, cycle = 0.0, 0
        tick = _Tick(StreamTick(self._telemetry.tracer, "metrics.tick", self._tick_s))
        async for slot in slots(self._clock, plan.interval_s, per_cycle):
            if slot.cycle != cycle:
                instruments.metrics_schedule_lag.record(cycle_lag)
                cycle, cycle_lag = slot.cycle, 0.0
            if slot.skipped:
                instruments.metrics_samples_skipped.add(slot.skipped)
            cycle_lag = max(cycle_lag, slot.lag)
            source, signal = plan.pairs[slot.index]
            sequence += 1
            stamp = Timestamp()
            stamp.FromNanoseconds(int(slot.due_wall * 1e9))
            yield metrics_pb2.MetricData(
                metric_type=signal.name,
                value=signal.value(seed, source.index, slot.due_wall),
                unit=signal.unit,
                time=stamp,
                labels=source.labels,
                sequence=sequence,
            )
            tick.add(slot.lag, slot.skipped)


class _Tick:
    """Sums up the stream for its ``metrics.tick`` span."""

    def __init__(self, tick: StreamTick) -> None:
        self._tick = tick
        self._sent = self._skipped = 0
        self._lag = 0.0

    def add(self, lag: float, skipped: int) -> None:
        self._sent += 1
        self._skipped += skipped
        self._lag = max(self._lag, lag)
        if self._tick.due():
            self._tick.emit(
                {
                    "pulse.stream.messages_sent": self._sent,
                    "pulse.metrics.lag_max_s": self._lag,
                    "pulse.metrics.samples_skipped": self._skipped,
                }
            )
            self._sent = self._skipped = 0
            self._lag = 0.0


class MetricsComponent:
    service_names = ("pulse.v1.MetricsService",)

    def __init__(self, settings: Settings, telemetry: Telemetry, clock: Clock | None = None):
        self.servicer = MetricsServicer(settings, telemetry, clock)

    def register(self, server: grpc.aio.Server) -> None:
        metrics_pb2_grpc.add_MetricsServiceServicer_to_server(self.servicer, server)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def checks(self) -> dict[str, bool]:
        return {}
