"""LogService: Ingest (client streaming) and Monitor (bidirectional)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc

from pulse.config import Settings
from pulse.log_service.buffer import REPLAYED, LogBuffer, Subscriber
from pulse.log_service.dedup import BatchDeduplicator
from pulse.log_service.filters import CompiledFilter, InvalidFilter, compile_filter
from pulse.log_service.ingest import BatchResult, IngestPipeline
from pulse.log_service.log_records import LogRecordEmitter
from pulse.telemetry import Telemetry
from pulse.telemetry import conventions as c
from pulse.v1 import logs_pb2, logs_pb2_grpc

__all__ = ["LogComponent", "LogServicer"]

_log = logging.getLogger("pulse.logs")


@dataclass
class _Totals:
    accepted: int = 0
    rate_limited: int = 0
    rejected: int = 0
    redacted: int = 0
    truncated: int = 0
    duplicate_batches: int = 0


class _Reader:
    """Reads filter updates while the call streams entries; records how the stream ended."""

    def __init__(self) -> None:
        self.closed = False
        self.error: str | None = None


class LogServicer(logs_pb2_grpc.LogServiceServicer):
    def __init__(self, settings: Settings, telemetry: Telemetry) -> None:
        self._ingest = settings.ingest
        self._monitor = settings.monitor
        self._tick_s = settings.telemetry.stream_tick_s
        self._telemetry = telemetry
        self.pipeline = IngestPipeline(settings.ingest)
        self.dedup = BatchDeduplicator(
            settings.ingest.dedup_window_s, settings.ingest.dedup_max_batches
        )
        self.buffer = LogBuffer(settings.monitor.buffer_entries)
        # Log records cost the SDK tens of microseconds each: only when they go somewhere.
        emit = settings.ingest.emit_log_records and settings.telemetry.enabled
        self._emitter = LogRecordEmitter(telemetry.logger_provider) if emit else None
        self.ingest_streams = 0

    # Ingest ---------------------------------------------------------------------------------

    async def Ingest(
        self,
        request_iterator: AsyncIterator[logs_pb2.IngestRequest],
        context: grpc.aio.ServicerContext,
    ) -> logs_pb2.IngestResponse:
        if self.ingest_streams >= self._ingest.max_streams:
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"too many Ingest calls: limit is {self._ingest.max_streams}",
            )
        self.ingest_streams += 1
        totals = _Totals()
        try:
            async for request in request_iterator:
                size = len(request.entries)
                if size > self._ingest.max_batch_entries:
                    self._count_batch("invalid")
                    await context.abort(
                        grpc.StatusCode.INVALID_ARGUMENT,
                        f"entries: a batch holds at most {self._ingest.max_batch_entries} entries, "
                        f"got {size}; earlier batches of this call were applied (retrying them "
                        "with the same batch_id is safe)",
                    )
                self._apply(request, totals)
        finally:
            self.ingest_streams -= 1
        return logs_pb2.IngestResponse(**totals.__dict__)

    def _apply(self, request: logs_pb2.IngestRequest, totals: _Totals) -> None:
        with self._telemetry.tracer.start_as_current_span("ingest.batch") as span:
            span.set_attribute("pulse.ingest.batch_id", request.batch_id[:128])
            span.set_attribute("pulse.ingest.entries", len(request.entries))
            if self.dedup.seen(request.batch_id):
                totals.duplicate_batches += 1
                span.set_attribute("pulse.ingest.duplicate", True)
                self._count_batch("duplicate")
                return
            result = self.pipeline.process(list(request.entries))
            self.dedup.record(request.batch_id)
            self.buffer.append(result.accepted)
            if self._emitter is not None and result.accepted:
                self._emitter.emit(result.accepted)
            self._record(result, totals, span)

    def _record(self, result: BatchResult, totals: _Totals, span) -> None:
        accepted = len(result.accepted)
        totals.accepted += accepted
        totals.rate_limited += result.rate_limited
        totals.rejected += result.rejected
        totals.redacted += result.redacted
        totals.truncated += result.truncated
        i = self._telemetry.instruments
        for outcome, n in (
            ("accepted", accepted),
            ("rate_limited", result.rate_limited),
            ("rejected", result.rejected),
        ):
            span.set_attribute(f"pulse.ingest.{outcome}", n)
            if n:
                i.ingest_entries.add(n, {c.ATTR_INGEST_OUTCOME: outcome})
        for modification, n in (("redacted", result.redacted), ("truncated", result.truncated)):
            span.set_attribute(f"pulse.ingest.{modification}", n)
            if n:
                i.ingest_modifications.add(n, {c.ATTR_INGEST_MODIFICATION: modification})
        for scope, n in result.scopes.items():
            i.ingest_rate_limited.add(n, {c.ATTR_RATELIMIT_SCOPE: scope})
        self._count_batch("applied")

    def _count_batch(self, outcome: str) -> None:
        self._telemetry.instruments.ingest_batches.add(1, {c.ATTR_BATCH_OUTCOME: outcome})

    # Monitor --------------------------------------------------------------------------------

    async def Monitor(
        self,
        request_iterator: AsyncIterator[logs_pb2.LogFilter],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[logs_pb2.MonitorResponse]:
        if len(self.buffer.subscribers) >= self._monitor.max_subscribers:
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"too many Monitor calls: limit is {self._monitor.max_subscribers}",
            )
        requests = aiter(request_iterator)
        try:
            first = await anext(requests)
        except StopAsyncIteration:
            return  # closed before sending a filter: nothing to watch
        subscriber = Subscriber(self._monitor.subscriber_queue)
        flt = self._compile(first)
        if flt is None:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, self._last_error)
        self._apply_filter(subscriber, flt)
        self.buffer.subscribers.add(subscriber)
        self._telemetry.instruments.monitor_subscribers.add(1)
        reader = _Reader()
        task = asyncio.create_task(self._read_filters(requests, subscriber, reader))
        try:
            async for response in self._responses(subscriber, reader):
                yield response
            if reader.error is not None:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, reader.error)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            self.buffer.subscribers.discard(subscriber)
            self._telemetry.instruments.monitor_subscribers.add(-1)

    _last_error = ""

    def _compile(self, message: logs_pb2.LogFilter) -> CompiledFilter | None:
        outcome = "applied"
        with self._telemetry.tracer.start_as_current_span("monitor.filter") as span:
            try:
                flt = compile_filter(message, self._monitor)
            except InvalidFilter as exc:
                outcome, flt = "invalid", None
                self._last_error = str(exc)
                span.set_status(grpc_status_error(str(exc)))
            span.set_attribute(c.ATTR_FILTER_OUTCOME, outcome)
            span.set_attribute("pulse.monitor.backlog", message.backlog)
        self._telemetry.instruments.monitor_filter_updates.add(1, {c.ATTR_FILTER_OUTCOME: outcome})
        return flt

    def _apply_filter(self, subscriber: Subscriber, flt: CompiledFilter) -> None:
        subscriber.replace_filter(flt, self.buffer.backlog(flt, flt.backlog))

    async def _read_filters(
        self, requests: AsyncIterator[logs_pb2.LogFilter], subscriber: Subscriber, reader: _Reader
    ) -> None:
        try:
            async for message in requests:
                flt = self._compile(message)
                if flt is None:
                    reader.error = self._last_error
                    break
                self._apply_filter(subscriber, flt)
        except grpc.aio.AioRpcError:
            pass  # the client went away; the call's own cancellation ends the stream
        finally:
            reader.closed = True
            subscriber.ready.set()

    async def _responses(
        self, subscriber: Subscriber, reader: _Reader
    ) -> AsyncIterator[logs_pb2.MonitorResponse]:
        i = self._telemetry.instruments
        limit = self._monitor.max_response_entries
        sent, due = 0, time.monotonic() + self._tick_s
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(subscriber.ready.wait(), self._tick_s)
            if reader.error is not None:
                return
            batch = subscriber.take(limit)
            dropped, subscriber.dropped = subscriber.dropped, 0
            if batch or dropped:
                now = time.monotonic()
                lags = [now - accepted for _, accepted in batch if accepted != REPLAYED]
                if lags:
                    i.monitor_delivery_lag.record(max(lags))
                if dropped:
                    i.monitor_dropped.add(dropped)
                if batch:
                    i.monitor_delivered.add(len(batch))
                sent += len(batch)
                yield logs_pb2.MonitorResponse(
                    entries=[entry for entry, _ in batch],
                    filter_revision=subscriber.revision,
                    dropped=dropped,
                )
            elif reader.closed:
                return  # half-closed and everything pending was sent
            if time.monotonic() >= due:
                self._tick(subscriber, sent)
                sent, due = 0, time.monotonic() + self._tick_s

    def _tick(self, subscriber: Subscriber, sent: int) -> None:
        with self._telemetry.tracer.start_as_current_span("monitor.tick") as span:
            span.set_attribute("pulse.monitor.entries_sent", sent)
            span.set_attribute("pulse.monitor.filter_revision", subscriber.revision)
            span.set_attribute("pulse.monitor.queued", len(subscriber.queue))


def grpc_status_error(description: str):
    from opentelemetry.trace import Status, StatusCode

    return Status(StatusCode.ERROR, description)


class LogComponent:
    service_names = ("pulse.v1.LogService",)

    def __init__(self, settings: Settings, telemetry: Telemetry) -> None:
        self.servicer = LogServicer(settings, telemetry)
        buffer = self.servicer.buffer
        meter = telemetry.meter
        meter.create_observable_gauge(
            "pulse.log.buffer.entries",
            unit="{entry}",
            description="Entries held in the ring buffer.",
            callbacks=[lambda _: [_observation(len(buffer))]],
        )
        meter.create_observable_gauge(
            "pulse.log.buffer.capacity",
            unit="{entry}",
            description="Entries the ring buffer can hold.",
            callbacks=[lambda _: [_observation(buffer.capacity)]],
        )

    def register(self, server: grpc.aio.Server) -> None:
        logs_pb2_grpc.add_LogServiceServicer_to_server(self.servicer, server)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def checks(self) -> dict[str, bool]:
        return {}


def _observation(value: float):
    from opentelemetry.metrics import Observation

    return Observation(value)
