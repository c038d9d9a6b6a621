"""Accepted entries as OpenTelemetry log records, so they reach Loki through the collector."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from pulse import __version__
from pulse.v1 import common_pb2, logs_pb2
from pulse.validation import MAX_TIME_NS

__all__ = ["LogRecordEmitter"]

_TEXT = {v: k.removeprefix("SEVERITY_") for k, v in common_pb2.Severity.items()}


def _hex_id(value: str, length: int) -> int:
    if len(value) != length:
        return 0
    try:
        return int(value, 16)
    except ValueError:
        return 0


class LogRecordEmitter:
    def __init__(self, logger_provider: LoggerProvider) -> None:
        self._logger = logger_provider.get_logger("pulse.ingest", __version__)

    def emit(self, entries: list[logs_pb2.LogEntry]) -> None:
        for entry in entries:
            context = None
            trace_id, span_id = _hex_id(entry.trace_id, 32), _hex_id(entry.span_id, 16)
            if trace_id and span_id:
                span = NonRecordingSpan(
                    SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(1))
                )
                context = trace.set_span_in_context(span)
            attributes = dict(entry.attributes)
            attributes["pulse.log.source"] = entry.source
            attributes["pulse.log.sequence"] = entry.sequence
            if entry.task_id:
                attributes["pulse.log.task_id"] = entry.task_id
            stamp = entry.time.ToNanoseconds()
            self._logger.emit(
                # OTLP holds unsigned nanoseconds: one record outside them would fail the whole
                # export batch, other clients' records included. Ingest rejects such times;
                # this keeps any that slip through from poisoning a batch.
                timestamp=stamp if 0 <= stamp <= MAX_TIME_NS else None,
                context=context,  # None: the Ingest call's own span
                severity_number=SeverityNumber(entry.severity),
                severity_text=_TEXT.get(entry.severity, "INFO"),
                body=entry.message,
                attributes=attributes,
            )
