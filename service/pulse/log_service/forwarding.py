"""Forwarding accepted entries to the logs backend over OTLP: Pulse's data path, not its telemetry.

Ingest hands each applied batch to ``LogForwarder.submit``, which only queues it: O(1) per
batch, bounded by batches, entries and bytes; a batch that does not fit is dropped and counted,
never waited for. A task of its own takes queued batches, encodes them straight into one
serialized ``ExportLogsServiceRequest`` per export (``otlp_logs.OtlpLogEncoder``: no SDK log
record, no protobuf object per entry) and exports it over OTLP/gRPC, retrying with exponential
backoff what OTLP says may be retried, until ``retry_max_elapsed_s``; what cannot be delivered
is dropped and counted by reason. What each record holds is in ``otlp_logs``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence

import grpc

from pulse.log_service.otlp_logs import BatchContext, OtlpLogEncoder
from pulse.telemetry.log_export import Export
from pulse.v1 import logs_pb2

__all__ = ["MAX_EXPORT_BYTES", "RETRYABLE", "LogForwarder"]

_log = logging.getLogger("pulse.logs.forwarding")

# Entries' bytes per export: with the records' own keys, well below the 4 MiB a receiver takes
# by default (the collector's OTLP receiver, grpc's max_recv_msg_size).
MAX_EXPORT_BYTES = 2 * 1024 * 1024

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

Done = Callable[[], None]
_Queued = tuple[Sequence[logs_pb2.LogEntry], BatchContext, int, int, Done | None]


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
        max_export_bytes: int = MAX_EXPORT_BYTES,
        timeout_s: float = 10.0,
        retry_initial_s: float = 0.5,
        retry_max_s: float = 5.0,
        retry_max_elapsed_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._encoder, self._export = encoder, export
        self.max_queue_batches = max_queue_batches
        self.max_queue_entries, self.max_queue_bytes = max_queue_entries, max_queue_bytes
        self._max_export_entries, self._max_export_bytes = max_export_entries, max_export_bytes
        self._timeout_s = timeout_s
        self._retry_initial_s, self._retry_max_s = retry_initial_s, retry_max_s
        self._retry_max_elapsed_s = retry_max_elapsed_s
        self._clock = clock
        self._queue: deque[_Queued] = deque()
        self.queued_entries = self.queued_bytes = 0
        self.forwarded = 0
        self.retries = 0
        self.dropped: Counter[str] = Counter()
        self._ready = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._stopping = False

    def fits(self, entries: int, size: int) -> bool:
        """Whether a batch of ``entries`` and ``size`` bytes would be queued now."""
        return not self._stopping and (
            len(self._queue) < self.max_queue_batches
            and self.queued_entries + entries <= self.max_queue_entries
            and self.queued_bytes + size <= self.max_queue_bytes
        )

    def submit(
        self,
        entries: Sequence[logs_pb2.LogEntry],
        size: int,
        context: BatchContext | None = None,
        done: Done | None = None,
    ) -> bool:
        """Queue a batch of ``size`` bytes without waiting; False when it was dropped (the
        queue is full or the forwarder stopped), counted as ``queue_full``. ``done`` is called
        once the batch is exported or dropped; ``context`` defaults to the current span's."""
        n = len(entries)
        if not self.fits(n, size):
            self.dropped["queue_full"] += n
            return False
        context = BatchContext.current() if context is None else context
        self._queue.append((entries, context, time.time_ns(), size, done))
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
            finally:
                for *_, done in batches:
                    if done is not None:
                        done()

    def _take(self) -> list[_Queued]:
        """Whole batches up to the export's entries and bytes (at least one batch)."""
        taken, count, size = [], 0, 0
        while self._queue:
            head = self._queue[0]
            if taken and (
                count + len(head[0]) > self._max_export_entries
                or size + head[3] > self._max_export_bytes
            ):
                break
            self._queue.popleft()
            self.queued_entries -= len(head[0])
            self.queued_bytes -= head[3]
            count += len(head[0])
            size += head[3]
            taken.append(head)
        return taken

    async def _deliver(self, batches: list[_Queued]) -> None:
        count = sum(len(b[0]) for b in batches)
        request = self._encoder.encode([(b[0], b[1], b[2]) for b in batches])
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
        for *_, done in self._queue:
            if done is not None:
                done()
        self._queue.clear()
        self.queued_entries = self.queued_bytes = 0
