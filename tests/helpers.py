"""Helpers shared by Pulse's tests."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pulse.telemetry import Telemetry

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "deploy" / "local"))
from processes import busy_ports

__all__ = [
    "CLUSTER_PORT_OFFSET",
    "STACK_PORT_OFFSET",
    "eventually",
    "free_port",
    "metric_points",
    "metric_total",
]

# The tests' stack and control plane listen on ports of their own, so a developer's running
# ones do not clash; every port stays below the kernel's range for outgoing connections
# (32768 and up), where a client socket could take it first (tests/unit/test_local_ports.py).
STACK_PORT_OFFSET = 11000
CLUSTER_PORT_OFFSET = 300
# Ports for the servers a test starts as a subprocess (free_port).
SERVER_PORTS = range(12000, 13000)
_unused_ports = iter(SERVER_PORTS)


def free_port() -> int:
    """A loopback port no one listens on, for a server the test starts next; never the same
    twice in a run. Unlike the kernel's port 0, it lies below the range of outgoing
    connections' ports, so no client socket can take it before the server binds it."""
    for port in _unused_ports:
        if not busy_ports({"port": port}):
            return port
    raise RuntimeError(f"no free port left in {SERVER_PORTS}")


def metric_points(telemetry: Telemetry, name: str) -> list[tuple[dict[str, Any], Any]]:
    """(attributes, point) of every data point of metric ``name`` collected so far.

    ``point`` is the value for sums and gauges and the data point itself for histograms.
    """
    assert telemetry.metric_reader is not None, "needs build_test_telemetry()"
    data = telemetry.metric_reader.get_metrics_data()
    found: list[tuple[dict[str, Any], Any]] = []
    for resource_metrics in data.resource_metrics if data else ():
        for scope in resource_metrics.scope_metrics:
            for metric in scope.metrics:
                if metric.name != name:
                    continue
                for point in metric.data.data_points:
                    value = getattr(point, "value", point)
                    found.append((dict(point.attributes), value))
    return found


def metric_total(telemetry: Telemetry, name: str, **attributes: Any) -> float:
    """Sum of the values of ``name`` whose attributes include ``attributes``."""
    total = 0.0
    for attrs, value in metric_points(telemetry, name):
        if all(attrs.get(k) == v for k, v in attributes.items()):
            total += value if isinstance(value, int | float) else value.count
    return total


def eventually(
    check: Callable[[], Any], what: str, timeout_s: float = 120, every_s: float = 2
) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except Exception as error:
            last = error
        else:
            if last:
                return last
        time.sleep(every_s)
    raise AssertionError(f"{what}: not seen within {timeout_s:.0f}s (last: {last!r})")


def emit_as_sdk_log_records(provider, entries) -> None:
    """What Pulse made of accepted entries through the OpenTelemetry SDK, one log record each,
    before it forwarded them itself: the contract ``log_service.otlp_logs`` keeps."""
    from opentelemetry import trace
    from opentelemetry._logs import SeverityNumber
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    from pulse import __version__

    logger = provider.get_logger("pulse.ingest", __version__)
    text = {5: "DEBUG", 9: "INFO", 13: "WARN", 17: "ERROR", 21: "FATAL"}

    def hex_id(value: str, length: int) -> int:
        if len(value) != length:
            return 0
        try:
            return int(value, 16)
        except ValueError:
            return 0

    for entry in entries:
        context = None
        trace_id, span_id = hex_id(entry.trace_id, 32), hex_id(entry.span_id, 16)
        if trace_id and span_id:
            span = NonRecordingSpan(SpanContext(trace_id, span_id, True, TraceFlags(1)))
            context = trace.set_span_in_context(span)
        attributes = dict(entry.attributes)
        attributes["pulse.log.source"] = entry.source
        attributes["pulse.log.sequence"] = entry.sequence
        if entry.task_id:
            attributes["pulse.log.task_id"] = entry.task_id
        stamp = entry.time.ToNanoseconds()
        logger.emit(
            timestamp=stamp if 0 <= stamp <= 2**63 - 1 else None,
            context=context,  # None: the current span's
            severity_number=SeverityNumber(entry.severity),
            severity_text=text.get(entry.severity, "INFO"),
            body=entry.message,
            attributes=attributes,
        )
