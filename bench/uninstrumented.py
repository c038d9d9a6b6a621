"""``pulse serve`` with Pulse's own instrumentation switched off: the same server, settings and
interceptors, with OpenTelemetry's no-op tracer, meter and logger providers, so every span,
metric and log record Pulse makes costs nothing. The baseline of "instrumentation on"."""

from __future__ import annotations

import asyncio
import signal

from opentelemetry._logs import NoOpLoggerProvider
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import NoOpTracerProvider
from prometheus_client import CollectorRegistry

from pulse.config import load
from pulse.server.app import PulseServer
from pulse.telemetry import Instruments, Telemetry
from pulse.telemetry.logging import configure_logging


def _telemetry() -> Telemetry:
    meter_provider = NoOpMeterProvider()
    return Telemetry(
        Resource.get_empty(),
        NoOpTracerProvider(),  # type: ignore[arg-type]
        meter_provider,  # type: ignore[arg-type]
        NoOpLoggerProvider(),  # type: ignore[arg-type]
        Instruments.create(meter_provider.get_meter("pulse")),
        CollectorRegistry(),
    )


async def main() -> None:
    settings = load()
    t = settings.telemetry
    configure_logging(t.log_level, t.log_format, t.service_name, None)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    server = PulseServer(settings, _telemetry())
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await server.start()
    await stop.wait()
    await server.stop(0)


if __name__ == "__main__":
    asyncio.run(main())
