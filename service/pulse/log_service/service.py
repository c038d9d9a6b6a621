"""LogService: Ingest (client streaming) and Monitor (bidirectional)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
from opentelemetry.metrics import Observation
from opentelemetry.trace import Status, StatusCode

from pulse.config import Settings
from pulse.log_service.buffer import (
    ENTRY_OVERHEAD,
    REPLAYED,
    LogBuffer,
    Subscriber,
    encode_response,
)
from pulse.log_service.bus import BatchTooLarge, BusUnavailable, LogBus
from pulse.log_service.dedup import BatchDeduplicator
from pulse.log_service.filters import CompiledFilter, InvalidFilter, compile_filter
from pulse.log_service.forwarding import LogForwarder
from pulse.log_service.ingest import BatchResult, IngestPipeline
from pulse.log_service.jetstream import JetStreamBus
from pulse.log_service.otlp_logs import OtlpLogEncoder
from pulse.log_service.ratelimit import Bucket
from pulse.log_service.ring import RingBus
from pulse.server.decoding import UndecodableRequest
from pulse.telemetry import Instruments, Telemetry
from pulse.telemetry import conventions as c
from pulse.telemetry.ticks import StreamTick
from pulse.v1 import logs_pb2, logs_pb2_grpc
from pulse.validation import echo

__all__ = ["LogComponent", "LogServicer"]

_log = logging.getLogger("pulse.logs")

RETRY_SAFE = (
    "batches applied earlier in this call stay applied; retrying them with the same batch_id "
    "is safe"
)
# What an entry may grow by in the pipeline (a time, a severity), beyond the request's size.
ENTRY_GROWTH_BYTES = 32
# On shutdown, what is queued for the logs backend gets this long to be exported.
FORWARD_FLUSH_S = 5.0


def build_bus(
    settings: Settings, telemetry: Telemetry, buffer: LogBuffer, dedup: BatchDeduplicator
) -> LogBus:
    """NATS JetStream when ``bus.url`` is set, else the in-process ring. Every batch read from
    the stream is remembered by ``dedup``, whichever replica applied it."""
    b = settings.bus
    if b.url is None:
        return RingBus(buffer)
    return JetStreamBus(
        b.url.get_secret_value(),
        buffer.extend,
        telemetry.tracer,
        telemetry.meter,
        stream=b.stream,
        subject=b.subject,
        dedup_window_s=settings.ingest.dedup_window_s,
        max_age_s=b.max_age_s,
        max_bytes=b.max_bytes,
        replicas=b.replicas,
        timeout_s=b.timeout_s,
        replay=settings.monitor.buffer_entries,
        max_batch_bytes=settings.grpc.max_message_bytes
        + settings.ingest.max_batch_entries * ENTRY_GROWTH_BYTES,
        seen=dedup.record,
    )


@dataclass
class _Totals:
    accepted: int = 0
    rate_limited: int = 0
    rejected: int = 0
    redacted: int = 0
    truncated: int = 0
    duplicate_batches: int = 0

    def add(self, result: BatchResult) -> None:
        self.accepted += len(result.accepted)
        self.rate_limited += result.rate_limited
        self.rejected += result.rejected
        self.redacted += result.redacted
        self.truncated += result.truncated


# Counts of an Ingest call reach their counters at most this often, and when the call ends.
COUNT_FLUSH_S = 1.0
_OUTCOMES = {o: {c.ATTR_INGEST_OUTCOME: o} for o in ("accepted", "rate_limited", "rejected")}
_MODIFICATIONS = {m: {c.ATTR_INGEST_MODIFICATION: m} for m in ("redacted", "truncated")}
_BATCHES = {o: {c.ATTR_BATCH_OUTCOME: o} for o in ("applied", "unapplied", "duplicate", "invalid")}


class _Counts:
    """One Ingest call's entry and batch counts, added to the counters once per
    COUNT_FLUSH_S rather than per batch (an ``add`` costs microseconds)."""

    def __init__(self, instruments: Instruments) -> None:
        self._i = instruments
        self.entries: Counter[str] = Counter()
        self.modifications: Counter[str] = Counter()
        self.scopes: Counter[str] = Counter()
        self.batches: Counter[str] = Counter()
        self._due = time.monotonic() + COUNT_FLUSH_S

    def add(self, result: BatchResult) -> None:
        accepted = len(result.accepted)
        for outcome, n in (
            ("accepted", accepted),
            ("rate_limited", result.rate_limited),
            ("rejected", result.rejected),
        ):
            if n:
                self.entries[outcome] += n
        if result.redacted:
            self.modifications["redacted"] += result.redacted
        if result.truncated:
            self.modifications["truncated"] += result.truncated
        if result.scopes:
            self.scopes.update(result.scopes)
        self.batches["applied" if accepted else "unapplied"] += 1

    def flush_if_due(self) -> None:
        if time.monotonic() >= self._due:
            self.flush()

    def flush(self) -> None:
        i = self._i
        for outcome, n in self.entries.items():
            i.ingest_entries.add(n, _OUTCOMES[outcome])
        for modification, n in self.modifications.items():
            i.ingest_modifications.add(n, _MODIFICATIONS[modification])
        for scope, n in self.scopes.items():
            i.ingest_rate_limited.add(n, {c.ATTR_RATELIMIT_SCOPE: scope})
        for outcome, n in self.batches.items():
            i.ingest_batches.add(n, _BATCHES[outcome])
        for pending in (self.entries, self.modifications, self.scopes, self.batches):
            pending.clear()
        self._due = time.monotonic() + COUNT_FLUSH_S


class _Reader:
    """Reads filter updates while the call streams entries; records how the stream ended."""

    def __init__(self) -> None:
        self.closed = False
        self.error: tuple[grpc.StatusCode, str] | None = None


class LogServicer(logs_pb2_grpc.LogServiceServicer):
    def __init__(self, settings: Settings, telemetry: Telemetry) -> None:
        self._ingest = settings.ingest
        self._monitor = settings.monitor
        self._tick_s = settings.telemetry.stream_tick_s
        self._telemetry = telemetry
        self.pipeline = IngestPipeline(settings.ingest)
        self.dedup = BatchDeduplicator(
            settings.ingest.dedup_window_s,
            settings.ingest.dedup_max_batches,
            settings.ingest.dedup_max_bytes,
        )
        m = settings.monitor
        self.buffer = LogBuffer(
            m.buffer_entries, m.buffer_bytes, m.max_response_entries, m.max_response_bytes
        )
        self.bus = build_bus(settings, telemetry, self.buffer, self.dedup)
        # Forwarding to the logs backend: made on the event loop when the component starts;
        # set here only when this replica forwards its own batches (no shared log bus).
        self.forwarder: LogForwarder | None = None
        self.ingest_streams = 0
        self.monitor_calls = 0
        # Looking for backlogs is the costly part of a filter update: one budget for all calls,
        # so reconnecting to get a fresh per-call allowance buys nothing.
        rate = settings.monitor.backlog_scan_rate
        self._scan_budget = Bucket(rate, rate, time.monotonic())

    # Ingest ---------------------------------------------------------------------------------

    async def Ingest(
        self,
        request_iterator: AsyncIterator[logs_pb2.IngestRequest],
        context: grpc.aio.ServicerContext,
    ) -> logs_pb2.IngestResponse:
        limit = self._ingest.max_streams
        if self.ingest_streams >= limit:
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED, f"too many Ingest calls: limit is {limit}"
            )
        self.ingest_streams += 1
        totals, counts = _Totals(), _Counts(self._telemetry.instruments)
        try:
            requests = aiter(request_iterator)
            while (request := await self._next_batch(requests, context)) is not None:
                await self._check_batch(request, context, counts)
                try:
                    await self._apply(request, totals, counts)
                except BusUnavailable as error:
                    await context.abort(
                        grpc.StatusCode.UNAVAILABLE,
                        f"{error}; the outcome of batch_id {echo(request.batch_id)} is unknown: "
                        f"retry it with the same batch_id; {RETRY_SAFE}",
                    )
                except BatchTooLarge as error:
                    await context.abort(
                        grpc.StatusCode.RESOURCE_EXHAUSTED, f"{error}; {RETRY_SAFE}"
                    )
                del request  # an idle call keeps no batch alive
        finally:
            self.ingest_streams -= 1
            counts.flush()
        return logs_pb2.IngestResponse(**totals.__dict__)

    async def _next_batch(
        self, requests: AsyncIterator[logs_pb2.IngestRequest], context: grpc.aio.ServicerContext
    ) -> logs_pb2.IngestRequest | None:
        idle = self._ingest.idle_timeout_s
        try:
            async with asyncio.timeout(idle):
                return await anext(requests)
        except StopAsyncIteration:
            return None
        except TimeoutError:
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"Ingest call idle for {idle:g} s (ingest.idle_timeout_s): an open call holds one "
                f"of {self._ingest.max_streams} places; send batches or close it; {RETRY_SAFE}",
            )

    async def _check_batch(
        self, request: logs_pb2.IngestRequest, context: grpc.aio.ServicerContext, counts: _Counts
    ) -> None:
        size = len(request.entries)
        problem = None
        if size > self._ingest.max_batch_entries:
            problem = f"entries: a batch holds at most {self._ingest.max_batch_entries}, got {size}"
        elif len(request.batch_id.encode()) > self._ingest.max_batch_id_bytes:
            problem = f"batch_id: longer than {self._ingest.max_batch_id_bytes} bytes"
        if problem is not None:
            counts.batches["invalid"] += 1
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{problem}; {RETRY_SAFE}")

    async def _apply(
        self, request: logs_pb2.IngestRequest, totals: _Totals, counts: _Counts
    ) -> None:
        attributes = {
            "pulse.ingest.batch_id": request.batch_id,
            "pulse.ingest.entries": len(request.entries),
        }
        with self._telemetry.tracer.start_as_current_span(
            "ingest.batch", attributes=attributes
        ) as span:
            if self.dedup.seen(request.batch_id):
                self._duplicate(totals, counts, span)
                return
            result = self.pipeline.process(list(request.entries))
            if result.accepted:
                # Another replica may have stored this batch already: the bus alone knows.
                stored = await self.bus.publish(request.batch_id, result.accepted)
                # Only a batch that applied something is remembered: one whose entries were
                # all rate limited or rejected may be sent again under the same id.
                self.dedup.record(request.batch_id)
                if not stored:
                    self._duplicate(totals, counts, span)
                    return
                if self.forwarder is not None:
                    # The request's size bounds the accepted entries' before their times and
                    # sequences: enough for the forwarder's byte bound, at one C call.
                    n = len(result.accepted)
                    size = request.ByteSize() + n * (ENTRY_GROWTH_BYTES + ENTRY_OVERHEAD)
                    self.forwarder.submit(result.accepted, size)
            accepted = len(result.accepted)
            totals.add(result)
            counts.add(result)
            span.set_attributes(
                {
                    "pulse.ingest.duplicate": False,
                    "pulse.ingest.accepted": accepted,
                    "pulse.ingest.rate_limited": result.rate_limited,
                    "pulse.ingest.rejected": result.rejected,
                    "pulse.ingest.redacted": result.redacted,
                    "pulse.ingest.truncated": result.truncated,
                }
            )
        counts.flush_if_due()

    @staticmethod
    def _duplicate(totals: _Totals, counts: _Counts, span) -> None:
        totals.duplicate_batches += 1
        span.set_attribute("pulse.ingest.duplicate", True)
        counts.batches["duplicate"] += 1

    # Monitor --------------------------------------------------------------------------------

    async def Monitor(
        self,
        request_iterator: AsyncIterator[logs_pb2.LogFilter],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[logs_pb2.MonitorResponse]:
        # A call is a subscriber from its start, before its first filter arrives.
        limit = self._monitor.max_subscribers
        if self.monitor_calls >= limit:
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED, f"too many Monitor calls: limit is {limit}"
            )
        self.monitor_calls += 1
        self._telemetry.instruments.monitor_subscribers.add(1)
        try:
            async for response in self._monitor_call(request_iterator, context):
                yield response
        finally:
            self.monitor_calls -= 1
            self._telemetry.instruments.monitor_subscribers.add(-1)

    async def _monitor_call(
        self, request_iterator: AsyncIterator[logs_pb2.LogFilter], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[logs_pb2.MonitorResponse]:
        m = self._monitor
        requests = aiter(request_iterator)
        try:
            async with asyncio.timeout(m.first_filter_timeout_s):
                first = await anext(requests)
        except StopAsyncIteration:
            return  # closed before sending a filter: nothing to watch
        except TimeoutError:
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"no filter within {m.first_filter_timeout_s:g} s "
                "(monitor.first_filter_timeout_s): send the filter first",
            )
        dropped = self._telemetry.instruments.monitor_dropped
        subscriber = Subscriber(m.subscriber_queue, m.subscriber_queue_bytes, dropped.add)
        updates = Bucket(m.filter_update_rate, m.filter_update_burst, time.monotonic())
        error = self._update(subscriber, first, updates)
        del first  # a stream that idles for hours keeps no request alive
        if error is not None:
            await context.abort(*error)
        self.buffer.subscribers.add(subscriber)
        reader = _Reader()
        task = asyncio.create_task(self._read_filters(requests, subscriber, updates, reader))
        try:
            async for response in self._responses(subscriber, reader):
                yield response
            if reader.error is not None:
                await context.abort(*reader.error)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            self.buffer.subscribers.discard(subscriber)

    def _update(
        self, subscriber: Subscriber, message: logs_pb2.LogFilter, updates: Bucket
    ) -> tuple[grpc.StatusCode, str] | None:
        """Apply one filter message; the status to end the call with when it cannot be."""
        m = self._monitor
        if updates.refill(time.monotonic()) < 1:
            return (
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"filter updates: at most {m.filter_update_burst} at once and "
                f"{m.filter_update_rate:g} per second (monitor.filter_update_rate)",
            )
        updates.tokens -= 1
        outcome, error = "applied", None
        with self._telemetry.tracer.start_as_current_span("monitor.filter") as span:
            span.set_attribute("pulse.monitor.backlog", message.backlog)
            try:
                flt = compile_filter(message, m)
            except InvalidFilter as exc:
                outcome, error = "invalid", (grpc.StatusCode.INVALID_ARGUMENT, str(exc))
                span.set_status(Status(StatusCode.ERROR, str(exc)))
            else:
                self._apply_filter(subscriber, flt)
                span.set_attribute("pulse.monitor.filter_revision", subscriber.revision)
            span.set_attribute(c.ATTR_FILTER_OUTCOME, outcome)
        self._telemetry.instruments.monitor_filter_updates.add(1, {c.ATTR_FILTER_OUTCOME: outcome})
        return error

    def _apply_filter(self, subscriber: Subscriber, flt: CompiledFilter) -> None:
        budget = self._scan_budget
        scan = min(self._monitor.max_backlog_scan, int(budget.refill(time.monotonic())))
        backlog, examined = self.buffer.backlog(flt, flt.backlog, scan)
        budget.tokens -= examined
        subscriber.replace_filter(flt, backlog)

    async def _read_filters(
        self,
        requests: AsyncIterator[logs_pb2.LogFilter],
        subscriber: Subscriber,
        updates: Bucket,
        reader: _Reader,
    ) -> None:
        try:
            async for message in requests:
                reader.error = self._update(subscriber, message, updates)
                del message  # nor the last filter message while it waits for the next
                if reader.error is not None:
                    break
        except UndecodableRequest as exc:
            reader.error = (grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except grpc.aio.AioRpcError:
            pass  # the client went away; the call's own cancellation ends the stream
        finally:
            reader.closed = True
            subscriber.ready.set()

    async def _responses(self, subscriber: Subscriber, reader: _Reader) -> AsyncIterator[bytes]:
        """Serialized responses: chunks shared with other subscribers, encoded once."""
        i = self._telemetry.instruments
        limit, max_bytes = self._monitor.max_response_entries, self._monitor.max_response_bytes
        linger = self._monitor.response_linger_s
        tick = StreamTick(self._telemetry.tracer, "monitor.tick", self._tick_s)
        sent = dropped_since_tick = 0
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(tick.remaining_s()):
                    await subscriber.ready.wait()
            if reader.error is not None:
                return
            if linger and subscriber.ready.is_set() and len(subscriber.queue) < limit:
                await asyncio.sleep(linger)  # more entries may come for the same write
            chunks = subscriber.take(limit, max_bytes)
            dropped, subscriber.dropped = subscriber.dropped, 0
            if chunks or dropped:
                live = [c.accepted for c in chunks if c.accepted != REPLAYED]
                if live:
                    i.monitor_delivery_lag.record(time.monotonic() - min(live))
                count = sum(len(c) for c in chunks)
                if count:
                    i.monitor_delivered.add(count)
                sent += count
                dropped_since_tick += dropped
                yield encode_response(chunks, subscriber.revision, dropped)
            elif reader.closed:
                return  # half-closed and everything pending was sent
            if tick.due():
                tick.emit(
                    {
                        "pulse.monitor.entries_sent": sent,
                        "pulse.monitor.dropped": dropped_since_tick,
                        "pulse.monitor.filter_revision": subscriber.revision,
                        "pulse.monitor.queued": len(subscriber.queue),
                    }
                )
                sent = dropped_since_tick = 0


def _serialized(response: bytes | logs_pb2.MonitorResponse) -> bytes:
    return response if isinstance(response, bytes) else response.SerializeToString()


class LogComponent:
    service_names = ("pulse.v1.LogService",)

    def __init__(self, settings: Settings, telemetry: Telemetry) -> None:
        self.servicer = LogServicer(settings, telemetry)
        self._settings, self._telemetry = settings, telemetry
        self.forwarder: LogForwarder | None = None
        buffer = self.servicer.buffer
        meter = telemetry.meter
        meter.create_observable_counter(
            "pulse.log.forward.entries",
            unit="{entry}",
            description="Accepted entries forwarded to the logs backend, or dropped, by outcome.",
            callbacks=[self._forwarded],
        )
        meter.create_observable_counter(
            "pulse.log.forward.retries",
            unit="{export}",
            description="Exports to the logs backend tried again after a retryable failure.",
            callbacks=[lambda _: self._forwarder_value(lambda f: f.retries)],
        )
        meter.create_observable_gauge(
            "pulse.log.forward.queue.size",
            unit="By",
            description="Bytes of accepted entries waiting to be forwarded.",
            callbacks=[lambda _: self._forwarder_value(lambda f: f.queued_bytes)],
        )
        meter.create_observable_gauge(
            "pulse.log.forward.queue.limit",
            unit="By",
            description="Bytes of entries the forwarding queue holds (ingest.forward_queue_bytes).",
            callbacks=[lambda _: self._forwarder_value(lambda f: f.max_queue_bytes)],
        )
        meter.create_observable_gauge(
            "pulse.log.buffer.entries",
            unit="{entry}",
            description="Entries held in the ring buffer.",
            callbacks=[lambda _: [Observation(len(buffer))]],
        )
        meter.create_observable_gauge(
            "pulse.log.buffer.capacity",
            unit="{entry}",
            description="Entries the ring buffer can hold.",
            callbacks=[lambda _: [Observation(buffer.capacity)]],
        )
        meter.create_observable_gauge(
            "pulse.log.buffer.size",
            unit="By",
            description="Bytes held in the ring buffer (encoded entries and their overhead).",
            callbacks=[lambda _: [Observation(buffer.bytes)]],
        )
        meter.create_observable_gauge(
            "pulse.log.buffer.limit",
            unit="By",
            description="Bytes the ring buffer can hold (monitor.buffer_bytes).",
            callbacks=[lambda _: [Observation(buffer.max_bytes)]],
        )

    def register(self, server: grpc.aio.Server) -> None:
        handlers = {
            "Ingest": grpc.stream_unary_rpc_method_handler(
                self.servicer.Ingest,
                request_deserializer=logs_pb2.IngestRequest.FromString,
                response_serializer=logs_pb2.IngestResponse.SerializeToString,
            ),
            # Monitor writes responses already serialized (their entries shared between
            # subscribers); see buffer.encode_response.
            "Monitor": grpc.stream_stream_rpc_method_handler(
                self.servicer.Monitor,
                request_deserializer=logs_pb2.LogFilter.FromString,
                response_serializer=_serialized,
            ),
        }
        service = logs_pb2.DESCRIPTOR.services_by_name["LogService"].full_name
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, handlers),))
        server.add_registered_method_handlers(service, handlers)

    async def start(self) -> None:
        if self._settings.ingest.emit_log_records and self._telemetry.forward_export is not None:
            self.forwarder = self._forwarder()
            await self.forwarder.start()
            bus = self.servicer.bus
            if isinstance(bus, JetStreamBus):
                bus.forward_to(self.forwarder)  # one replica forwards each batch of the bus
            else:
                self.servicer.forwarder = self.forwarder
        await self.servicer.bus.start()

    async def stop(self) -> None:
        if self.forwarder is not None:
            await self.forwarder.stop(FORWARD_FLUSH_S)
        await self.servicer.bus.stop()

    def _forwarder(self) -> LogForwarder:
        queue_bytes = self._settings.ingest.forward_queue_bytes
        assert self._telemetry.forward_export is not None
        return LogForwarder(
            OtlpLogEncoder(self._telemetry.resource),
            self._telemetry.forward_export(),
            max_queue_bytes=queue_bytes,
            max_queue_entries=queue_bytes // ENTRY_OVERHEAD,
        )

    def _forwarded(self, _options) -> list[Observation]:
        forwarder = self.forwarder
        if forwarder is None:
            return []
        observations = [Observation(forwarder.forwarded, {c.ATTR_FORWARD_OUTCOME: "forwarded"})]
        for reason, n in forwarder.dropped.items():
            observations.append(Observation(n, {c.ATTR_FORWARD_OUTCOME: reason}))
        return observations

    def _forwarder_value(self, read) -> list[Observation]:
        return [] if self.forwarder is None else [Observation(read(self.forwarder))]

    async def checks(self) -> dict[str, bool]:
        return {"log_bus": await self.servicer.bus.healthy()}
