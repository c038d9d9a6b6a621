"""Forwarding accepted entries to the logs backend over OTLP: Pulse's data path, not its telemetry.

Ingest hands each applied batch to ``LogForwarder.submit``, which only queues it: O(1) per
batch, bounded by batches, entries and bytes; a batch that does not fit is dropped and counted,
never waited for. A task of its own takes queued batches, encodes them straight into one
``ExportLogsServiceRequest`` per export (``OtlpLogEncoder``: no SDK log record, no per-entry
object beyond the protobuf message itself) and exports it over OTLP/gRPC, retrying with
exponential backoff what OTLP says may be retried, until ``retry_max_elapsed_s``; what cannot be
delivered is dropped and counted by reason.

What reaches the backend is what the OpenTelemetry SDK made of each entry before (a log record
per entry through ``LoggerProvider``), field for field: body = message, severity number and
text, time (0 when outside what OTLP holds), attributes = the entry's plus ``pulse.log.source``,
``pulse.log.sequence`` and ``pulse.log.task_id`` (when set), trace and span id = the entry's when
both are valid hex, else those of the span current when the batch was submitted (the
``ingest.batch`` span), the process's resource and the scope ``pulse.ingest``.
tests/integration/test_forwarding.py holds the encoding against the SDK's, and
tests/e2e/test_forwarding_live.py against a real collector and VictoriaLogs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import grpc
from opentelemetry import trace
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.logs.v1 import logs_pb2 as otlp
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.sdk.resources import Resource

from pulse import __version__
from pulse.v1 import common_pb2 as pulse_common
from pulse.v1 import logs_pb2
from pulse.validation import MAX_TIME_NS

__all__ = ["RETRYABLE", "BatchContext", "LogForwarder", "OtlpLogEncoder", "grpc_exporter"]

_log = logging.getLogger("pulse.logs.forwarding")

SCOPE = "pulse.ingest"
_TEXT = {v: k.removeprefix("SEVERITY_") for k, v in pulse_common.Severity.items()}
_NANOS = 1_000_000_000
_SAMPLED = 1
# OTLP/gRPC: the codes a client retries (RESOURCE_EXHAUSTED only when the server says when).
RETRYABLE = frozenset(
    {
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)


@dataclass(frozen=True)
class BatchContext:
    """The trace context of the call that submitted a batch: the ids its entries without ids
    of their own carry (0: none)."""

    trace_id: int = 0
    span_id: int = 0
    flags: int = 0

    @classmethod
    def current(cls) -> BatchContext:
        context = trace.get_current_span().get_span_context()
        if not context.is_valid:
            return _NO_CONTEXT
        return cls(context.trace_id, context.span_id, int(context.trace_flags))


_NO_CONTEXT = BatchContext()


def _hex_id(value: str, length: int) -> int:
    """The id, or 0 when it is not ``length`` hex digits (as the SDK path parsed them)."""
    if len(value) != length:
        return 0
    try:
        parsed = int(value, 16)
    except ValueError:
        return 0
    return parsed if 0 < parsed < 1 << (length * 4) else 0


def _value(value: object) -> common_pb2.AnyValue:
    if isinstance(value, bool):
        return common_pb2.AnyValue(bool_value=value)
    if isinstance(value, int):
        return common_pb2.AnyValue(int_value=value)
    if isinstance(value, float):
        return common_pb2.AnyValue(double_value=value)
    if isinstance(value, Sequence) and not isinstance(value, str):
        values = [_value(v) for v in value]
        return common_pb2.AnyValue(array_value=common_pb2.ArrayValue(values=values))
    return common_pb2.AnyValue(string_value=str(value))


class OtlpLogEncoder:
    """Batches of entries as one ``ExportLogsServiceRequest`` of the process's resource and
    the scope ``pulse.ingest``."""

    def __init__(self, resource: Resource) -> None:
        self._resource = resource_pb2.Resource(
            attributes=[
                common_pb2.KeyValue(key=k, value=_value(v)) for k, v in resource.attributes.items()
            ]
        )
        self._schema_url = resource.schema_url
        self._scope = common_pb2.InstrumentationScope(name=SCOPE, version=__version__)

    def encode(
        self, batches: Sequence[tuple[Sequence[logs_pb2.LogEntry], BatchContext, int]]
    ) -> logs_service_pb2.ExportLogsServiceRequest:
        """``batches``: (entries, the submitting call's context, observed time in ns)."""
        request = logs_service_pb2.ExportLogsServiceRequest()
        resource_logs = request.resource_logs.add(schema_url=self._schema_url)
        resource_logs.resource.CopyFrom(self._resource)
        scope_logs = resource_logs.scope_logs.add()
        scope_logs.scope.CopyFrom(self._scope)
        records = scope_logs.log_records
        for entries, context, observed_ns in batches:
            for entry in entries:
                self._record(records.add(), entry, context, observed_ns)
        return request

    @staticmethod
    def _record(
        record: otlp.LogRecord, entry: logs_pb2.LogEntry, context: BatchContext, observed: int
    ) -> None:
        stamp = entry.time
        ns = stamp.seconds * _NANOS + stamp.nanos
        if 0 <= ns <= MAX_TIME_NS:
            record.time_unix_nano = ns
        record.observed_time_unix_nano = observed
        severity = entry.severity
        record.severity_number = severity  # type: ignore[assignment]
        record.severity_text = _TEXT.get(severity, "INFO")
        record.body.string_value = entry.message
        attributes = record.attributes
        for key, value in entry.attributes.items():
            attributes.add(key=key).value.string_value = value
        attributes.add(key="pulse.log.source").value.string_value = entry.source
        attributes.add(key="pulse.log.sequence").value.int_value = entry.sequence
        if entry.task_id:
            attributes.add(key="pulse.log.task_id").value.string_value = entry.task_id
        trace_id = _hex_id(entry.trace_id, 32) if entry.trace_id else 0
        span_id = _hex_id(entry.span_id, 16) if trace_id else 0
        if trace_id and span_id:
            record.trace_id = trace_id.to_bytes(16, "big")
            record.span_id = span_id.to_bytes(8, "big")
            record.flags = _SAMPLED
        elif context.trace_id:
            record.trace_id = context.trace_id.to_bytes(16, "big")
            record.span_id = context.span_id.to_bytes(8, "big")
            record.flags = context.flags


Export = Callable[[logs_service_pb2.ExportLogsServiceRequest, float], Awaitable[int]]


def grpc_exporter(channel: grpc.aio.Channel) -> Export:
    """Exports over OTLP/gRPC on ``channel``; returns the records the receiver rejected."""
    stub = logs_service_pb2_grpc.LogsServiceStub(channel)

    async def export(request: logs_service_pb2.ExportLogsServiceRequest, timeout_s: float) -> int:
        response = await stub.Export(request, timeout=timeout_s)
        return response.partial_success.rejected_log_records

    return export


class LogForwarder:
    """A bounded queue of submitted batches, drained by one task that encodes and exports."""

    def __init__(
        self,
        encoder: OtlpLogEncoder,
        export: Export,
        *,
        max_queue_batches: int = 10_000,
        max_queue_entries: int = 100_000,
        max_queue_bytes: int = 64 * 1024 * 1024,
        max_export_entries: int = 4096,
        timeout_s: float = 10.0,
        retry_initial_s: float = 0.5,
        retry_max_s: float = 5.0,
        retry_max_elapsed_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._encoder, self._export = encoder, export
        self.max_queue_batches = max_queue_batches
        self.max_queue_entries, self.max_queue_bytes = max_queue_entries, max_queue_bytes
        self._max_export_entries = max_export_entries
        self._timeout_s = timeout_s
        self._retry_initial_s, self._retry_max_s = retry_initial_s, retry_max_s
        self._retry_max_elapsed_s = retry_max_elapsed_s
        self._clock = clock
        self._queue: deque[tuple[Sequence[logs_pb2.LogEntry], BatchContext, int, int]] = deque()
        self.queued_entries = self.queued_bytes = 0
        self.forwarded = 0
        self.retries = 0
        self.dropped: Counter[str] = Counter()
        self._ready = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._stopping = False

    def submit(
        self,
        entries: Sequence[logs_pb2.LogEntry],
        size: int,
        context: BatchContext | None = None,
    ) -> bool:
        """Queue a batch of ``size`` bytes without waiting; False when it was dropped (the
        queue is full or the forwarder stopped), counted as ``queue_full``."""
        n = len(entries)
        if (
            self._stopping
            or len(self._queue) >= self.max_queue_batches
            or self.queued_entries + n > self.max_queue_entries
            or self.queued_bytes + size > self.max_queue_bytes
        ):
            self.dropped["queue_full"] += n
            return False
        context = BatchContext.current() if context is None else context
        self._queue.append((entries, context, time.time_ns(), size))
        self.queued_entries += n
        self.queued_bytes += size
        self._ready.set()
        return True

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="log-forwarder")

    async def stop(self, timeout_s: float = 5.0) -> None:
        """Export what is queued within ``timeout_s``; drop (and count) the rest."""
        self._stopping = True
        self._ready.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout_s)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
        self._drop_queued("shutdown")

    async def _run(self) -> None:
        while True:
            if not self._queue:
                if self._stopping:
                    return
                self._ready.clear()
                await self._ready.wait()
                continue
            batches = self._take()
            try:
                await self._deliver(batches)
            except asyncio.CancelledError:
                self.dropped["shutdown"] += sum(len(b[0]) for b in batches)
                raise

    def _take(self) -> list[tuple[Sequence[logs_pb2.LogEntry], BatchContext, int]]:
        taken, count = [], 0
        while self._queue and (
            not taken or count + len(self._queue[0][0]) <= self._max_export_entries
        ):
            entries, context, observed, size = self._queue.popleft()
            self.queued_entries -= len(entries)
            self.queued_bytes -= size
            count += len(entries)
            taken.append((entries, context, observed))
        return taken

    async def _deliver(
        self, batches: list[tuple[Sequence[logs_pb2.LogEntry], BatchContext, int]]
    ) -> None:
        count = sum(len(b[0]) for b in batches)
        request = self._encoder.encode(batches)
        del batches  # the encoded request is all an export keeps
        deadline = self._clock() + self._retry_max_elapsed_s
        delay = self._retry_initial_s
        while True:
            try:
                rejected = await self._export(request, self._timeout_s)
            except grpc.aio.AioRpcError as error:
                if error.code() not in RETRYABLE:
                    self._fail(count, "export_failed", error)
                    return
                if self._stopping:
                    self._fail(count, "shutdown", error)
                    return
                if self._clock() + delay > deadline:
                    self._fail(count, "retries_exhausted", error)
                    return
                self.retries += 1
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._retry_max_s)
                continue
            self.forwarded += count - rejected
            if rejected:
                self.dropped["rejected"] += rejected
            return

    def _fail(self, count: int, reason: str, error: grpc.aio.AioRpcError) -> None:
        self.dropped[reason] += count
        _log.warning(
            "log forwarding: %d entries dropped (%s): %s %s",
            count,
            reason,
            error.code().name,
            (error.details() or "")[:200],
        )

    def _drop_queued(self, reason: str) -> None:
        if self.queued_entries:
            self.dropped[reason] += self.queued_entries
        self._queue.clear()
        self.queued_entries = self.queued_bytes = 0
