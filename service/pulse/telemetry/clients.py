"""Spans and duration metrics of Pulse's calls to the engines it depends on: the sensor
database (``db.client.operation.duration``) and the log bus
(``messaging.client.operation.duration``), after the database and messaging semantic
conventions. One span and one measurement per call, and a call covers a whole batch.

Neither driver's OpenTelemetry instrumentation is released for the pinned instrumentation
version, so Pulse traces its few calls itself.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry.metrics import Meter
from opentelemetry.semconv._incubating.attributes import messaging_attributes as ma
from opentelemetry.semconv._incubating.metrics.messaging_metrics import (
    MESSAGING_CLIENT_OPERATION_DURATION,
)
from opentelemetry.semconv.attributes import db_attributes as da
from opentelemetry.semconv.attributes import error_attributes as ea
from opentelemetry.semconv.attributes import server_attributes as sa
from opentelemetry.semconv.metrics.db_metrics import DB_CLIENT_OPERATION_DURATION
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from pulse.telemetry.conventions import DURATION_BUCKETS_S

__all__ = ["DatabaseCalls", "MessagingCalls"]


class _Calls:
    def __init__(self, tracer: Tracer, meter: Meter, metric: str, description: str) -> None:
        self._tracer = tracer
        self._duration = meter.create_histogram(
            metric,
            unit="s",
            description=description,
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS_S,
        )

    @contextmanager
    def _call(
        self, name: str, kind: SpanKind, attributes: dict[str, Any], measured: dict[str, Any]
    ) -> Iterator[Span]:
        start = time.perf_counter()
        with self._tracer.start_as_current_span(
            name, kind=kind, attributes=attributes, record_exception=False
        ) as span:
            try:
                yield span
            except BaseException as error:
                kind_of_error = type(error).__qualname__
                span.set_attribute(ea.ERROR_TYPE, kind_of_error)
                span.set_status(Status(StatusCode.ERROR, str(error)[:200]))
                measured = {**measured, ea.ERROR_TYPE: kind_of_error}
                raise
            finally:
                self._duration.record(time.perf_counter() - start, measured)


class DatabaseCalls(_Calls):
    """Calls to PostgreSQL: span ``<operation> <collection>``, kind CLIENT."""

    def __init__(self, tracer: Tracer, meter: Meter, host: str, port: int, database: str):
        super().__init__(
            tracer,
            meter,
            DB_CLIENT_OPERATION_DURATION,
            "Duration of calls to the sensor database, one per statement or transaction.",
        )
        self._server = {
            da.DB_SYSTEM_NAME: "postgresql",
            da.DB_NAMESPACE: database,
            sa.SERVER_ADDRESS: host,
            sa.SERVER_PORT: port,
        }

    def call(self, operation: str, collection: str) -> Any:
        attributes = {
            **self._server,
            da.DB_OPERATION_NAME: operation,
            da.DB_COLLECTION_NAME: collection,
        }
        measured = {
            da.DB_SYSTEM_NAME: "postgresql",
            da.DB_OPERATION_NAME: operation,
            da.DB_COLLECTION_NAME: collection,
        }
        return self._call(f"{operation} {collection}", SpanKind.CLIENT, attributes, measured)


class MessagingCalls(_Calls):
    """Calls to NATS JetStream: span ``<operation> <destination>``, kind PRODUCER or CLIENT."""

    def __init__(self, tracer: Tracer, meter: Meter, host: str, port: int) -> None:
        super().__init__(
            tracer,
            meter,
            MESSAGING_CLIENT_OPERATION_DURATION,
            "Duration of calls to the log bus, one per published batch or stream request.",
        )
        self._server = {ma.MESSAGING_SYSTEM: "nats", sa.SERVER_ADDRESS: host, sa.SERVER_PORT: port}

    def call(self, operation: str, destination: str, entries: int | None = None) -> Any:
        kind = SpanKind.PRODUCER if operation == "publish" else SpanKind.CLIENT
        attributes = {
            **self._server,
            ma.MESSAGING_OPERATION_NAME: operation,
            ma.MESSAGING_DESTINATION_NAME: destination,
        }
        if entries is not None:
            attributes["pulse.bus.entries"] = entries
        measured = {
            ma.MESSAGING_SYSTEM: "nats",
            ma.MESSAGING_OPERATION_NAME: operation,
            ma.MESSAGING_DESTINATION_NAME: destination,
        }
        return self._call(f"{operation} {destination}", kind, attributes, measured)
