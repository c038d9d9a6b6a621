"""``pulse serve`` with Pulse's own instrumentation switched off: the same server, settings and
interceptors, with OpenTelemetry's no-op tracer, meter and logger providers, so every span,
metric and log record Pulse makes costs nothing. The baseline of "instrumentation on"."""

from __future__ import annotations

import sys

from opentelemetry._logs import NoOpLoggerProvider
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import NoOpTracerProvider
from prometheus_client import CollectorRegistry

from pulse.config import ConfigError, load
from pulse.server.run import serve
from pulse.telemetry import Instruments, Telemetry


def no_op_telemetry() -> Telemetry:
    meter_provider = NoOpMeterProvider()
    return Telemetry(
        Resource.get_empty(),
        NoOpTracerProvider(),  # type: ignore[arg-type]
        meter_provider,  # type: ignore[arg-type]
        NoOpLoggerProvider(),  # type: ignore[arg-type]
        Instruments.create(meter_provider.get_meter("pulse")),
        CollectorRegistry(),
    )


if __name__ == "__main__":
    try:
        settings = load()
    except ConfigError as error:
        sys.exit(f"pulse: {error}")
    sys.exit(serve(settings, no_op_telemetry()))
