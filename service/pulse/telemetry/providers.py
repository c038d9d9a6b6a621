"""Tracer, meter and logger providers for one process, built from settings and passed around.

Nothing is global until ``install_global`` is called by the entry point: tests build their own
``Telemetry`` with in-memory exporters and hand it to the components they test.
"""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from opentelemetry import metrics, trace
from opentelemetry._logs import set_logger_provider
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    InMemoryLogRecordExporter,
    LogRecordExporter,
    SimpleLogRecordProcessor,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricReader
from opentelemetry.sdk.resources import OTELResourceDetector, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

from pulse import __version__
from pulse.telemetry.instruments import Instruments
from pulse.telemetry.log_export import Export, InMemoryExport, grpc_exporter, otlp_channel
from pulse.telemetry.process_metrics import register_process_metrics

__all__ = [
    "Telemetry",
    "build_resource",
    "build_telemetry",
    "build_test_telemetry",
    "sdk_disabled",
]

# Pulse exports metrics more often than the SDK's 60 s default so alerts and dashboards are
# timely; OTEL_METRIC_EXPORT_INTERVAL still wins.
DEFAULT_EXPORT_INTERVAL_MS = 10_000
# Bounded queues: a dead collector costs dropped telemetry, never memory or blocked calls.
# Log records are Pulse's own log lines (ingested entries are forwarded apart, see
# log_service.forwarding); pulse.memory counts both queues.
MAX_QUEUE = 4096
MAX_LOG_QUEUE = 2048
MAX_EXPORT_BATCH = 512


@dataclass
class Telemetry:
    """The providers and instruments of one process."""

    resource: Resource
    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    logger_provider: LoggerProvider
    instruments: Instruments
    registry: CollectorRegistry
    span_exporter: InMemorySpanExporter | None = None
    metric_reader: InMemoryMetricReader | None = None
    log_exporter: InMemoryLogRecordExporter | None = None
    # How ingested entries are forwarded to the logs backend (log_service.forwarding): made
    # when the forwarder starts, on the event loop. None: they are not forwarded.
    forward_export: Callable[[], Export] | None = None
    forwarded: InMemoryExport | None = None

    @property
    def tracer(self) -> trace.Tracer:
        return self.tracer_provider.get_tracer("pulse", __version__)

    @property
    def meter(self) -> metrics.Meter:
        return self.meter_provider.get_meter("pulse", __version__)

    def install_global(self) -> None:
        """Make these providers the process-wide ones (for libraries that use the globals)."""
        trace.set_tracer_provider(self.tracer_provider)
        metrics.set_meter_provider(self.meter_provider)
        set_logger_provider(self.logger_provider)

    def shutdown(self) -> None:
        """Flush and stop every exporter; each is bounded by its own timeout."""
        for provider in (self.tracer_provider, self.logger_provider, self.meter_provider):
            with contextlib.suppress(Exception):  # telemetry must never break shutdown
                provider.shutdown()


def build_resource(service_name: str, environment: str) -> Resource:
    """service.* and deployment.* attributes; OTEL_SERVICE_NAME/OTEL_RESOURCE_ATTRIBUTES win."""
    ours = {
        "service.name": service_name,
        "service.version": __version__,
        "service.instance.id": os.environ.get("HOSTNAME")
        or f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}",
        "deployment.environment.name": environment,
    }
    from_env = OTELResourceDetector().detect()
    resource = Resource.create({k: v for k, v in ours.items() if k not in from_env.attributes})
    if "OTEL_SERVICE_NAME" not in os.environ and "service.name" not in from_env.attributes:
        resource = resource.merge(Resource({"service.name": service_name}))
    return resource


def sdk_disabled() -> bool:
    """``OTEL_SDK_DISABLED=true``: nothing is exported (Pulse's /metrics stays)."""
    return os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


@contextlib.contextmanager
def _metrics_kept() -> Iterator[None]:
    """The SDK's MeterProvider hands out no-op meters under OTEL_SDK_DISABLED, which would empty
    /metrics, Pulse's own view of itself. The variable means "export nothing" to Pulse, which
    the caller already ensures, so the provider is built without it."""
    saved = os.environ.pop("OTEL_SDK_DISABLED", None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ["OTEL_SDK_DISABLED"] = saved


def _assemble(
    resource: Resource,
    span_processors: Sequence[object],
    metric_readers: Sequence[MetricReader],
    log_processors: Sequence[object],
    registry: CollectorRegistry,
) -> tuple[TracerProvider, MeterProvider, LoggerProvider]:
    tracer_provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    for processor in span_processors:
        tracer_provider.add_span_processor(processor)
    prometheus_reader = PrometheusMetricReader(registry=registry)
    with _metrics_kept():
        meter_provider = MeterProvider(
            resource=resource,
            metric_readers=[*metric_readers, prometheus_reader],
            shutdown_on_exit=False,  # Telemetry.shutdown flushes, bounded by its caller
        )
    register_process_metrics(meter_provider.get_meter("pulse.process", __version__))
    logger_provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
    for processor in log_processors:
        logger_provider.add_log_record_processor(processor)
    return tracer_provider, meter_provider, logger_provider


def build_telemetry(
    service_name: str,
    environment: str,
    *,
    export: bool = True,
    registry: CollectorRegistry | None = None,
) -> Telemetry:
    """Providers exporting over OTLP (standard ``OTEL_EXPORTER_OTLP_*`` variables apply);
    ``OTEL_SDK_DISABLED=true`` exports nothing, like ``export=False``."""
    export = export and not sdk_disabled()
    resource = build_resource(service_name, environment)
    registry = registry or CollectorRegistry(auto_describe=True)
    span_processors: list[object] = []
    readers: list[MetricReader] = []
    log_processors: list[object] = []
    if export:
        span_processors.append(
            BatchSpanProcessor(
                _otlp_span_exporter(),
                max_queue_size=MAX_QUEUE,
                max_export_batch_size=MAX_EXPORT_BATCH,
            )
        )
        readers.append(_otlp_metric_reader())
        log_processors.append(
            BatchLogRecordProcessor(
                _otlp_log_exporter(),
                max_queue_size=MAX_LOG_QUEUE,
                max_export_batch_size=MAX_EXPORT_BATCH,
            )
        )
    tracer_provider, meter_provider, logger_provider = _assemble(
        resource, span_processors, readers, log_processors, registry
    )
    instruments = Instruments.create(meter_provider.get_meter("pulse", __version__))
    return Telemetry(
        resource,
        tracer_provider,
        meter_provider,
        logger_provider,
        instruments,
        registry,
        forward_export=_otlp_forward_export if export else None,
    )


def build_test_telemetry(service_name: str = "pulse") -> Telemetry:
    """Providers with in-memory exporters, for tests that assert spans, metrics and logs."""
    resource = Resource.create({"service.name": service_name, "service.version": __version__})
    registry = CollectorRegistry(auto_describe=True)
    spans = InMemorySpanExporter()
    reader = InMemoryMetricReader()
    logs = InMemoryLogRecordExporter()
    tracer_provider, meter_provider, logger_provider = _assemble(
        resource, [SimpleSpanProcessor(spans)], [reader], [SimpleLogRecordProcessor(logs)], registry
    )
    instruments = Instruments.create(meter_provider.get_meter("pulse", __version__))
    forwarded = InMemoryExport()
    return Telemetry(
        resource,
        tracer_provider,
        meter_provider,
        logger_provider,
        instruments,
        registry,
        span_exporter=spans,
        metric_reader=reader,
        log_exporter=logs,
        forward_export=lambda: forwarded,
        forwarded=forwarded,
    )


def _otlp_forward_export() -> Export:
    """OTLP/gRPC to the endpoint of the standard ``OTEL_EXPORTER_OTLP_*`` variables."""
    return grpc_exporter(*otlp_channel())


def _otlp_span_exporter() -> SpanExporter:
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def _otlp_log_exporter() -> LogRecordExporter:
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter

    return OTLPLogExporter()


def _otlp_metric_reader() -> MetricReader:
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

    interval = int(os.environ.get("OTEL_METRIC_EXPORT_INTERVAL", DEFAULT_EXPORT_INTERVAL_MS))
    return PeriodicExportingMetricReader(OTLPMetricExporter(), export_interval_millis=interval)
