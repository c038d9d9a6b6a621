"""Structured logs: JSON lines on stdout and OTLP log records, both with trace and span ids."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TextIO

from opentelemetry import trace
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider

__all__ = ["JsonFormatter", "Throttle", "configure_logging"]

# Attributes every LogRecord has; anything else came through ``extra=`` and is logged.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
# Libraries whose own logs must not loop back into the exporter they report on.
_NOT_EXPORTED = ("opentelemetry", "grpc", "urllib3", "aiohttp.access")


class JsonFormatter(logging.Formatter):
    def __init__(self, service_name: str) -> None:
        super().__init__()
        self._service = service_name

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "service.name": self._service,
        }
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            line["trace_id"] = format(context.trace_id, "032x")
            line["span_id"] = format(context.span_id, "016x")
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("otel"):
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class _NotExported(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.name.startswith(_NOT_EXPORTED)


def configure_logging(
    level: str,
    fmt: str,
    service_name: str,
    logger_provider: LoggerProvider | None,
    stream: TextIO = sys.stdout,
) -> None:
    """Replace the root handlers: stdout (JSON or text) and, when given, OTLP."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.setLevel(level)
    console = logging.StreamHandler(stream)
    console.setFormatter(
        JsonFormatter(service_name)
        if fmt == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    )
    root.addHandler(console)
    if logger_provider is not None:
        exporter = LoggingHandler(level=logging.NOTSET, logger_provider=logger_provider)
        exporter.addFilter(_NotExported())
        root.addHandler(exporter)


class Throttle:
    """At most one log line per key and interval: ``allow`` returns how many were suppressed
    since the last line (0 or more), or None while the interval has not passed."""

    def __init__(self, every_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._every, self._clock = every_s, clock
        self._next: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def allow(self, key: str) -> int | None:
        now = self._clock()
        if now < self._next.get(key, 0.0):
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return None
        self._next[key] = now + self._every
        return self._suppressed.pop(key, 0)
