"""The bounded ring buffer of accepted entries and the fan-out to Monitor subscribers.

Entries move in chunks: the entries of one batch (or the part of it a filter matched), at most
one response's worth (``monitor.max_response_entries`` and ``max_response_bytes``). A batch is
matched once per distinct filter, with work that grows with the entries matched
(``filters.BatchIndex``), and subscribers whose filters match the same entries queue the same
chunk, encoded once for all of them: a response is the concatenation of its chunks' encodings
and of the subscriber's own ``filter_revision`` and ``dropped`` (protobuf concatenates).

The ring and every queue are bounded by entries and by bytes: an entry's cost is its encoded
size plus ``ENTRY_OVERHEAD``, the Python and protobuf objects around it (measured: about 400
bytes for a small entry; bench/ and tests/abuse hold the total against the process's memory).
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import time
from collections import deque
from collections.abc import Callable, Iterable

from pulse.log_service.filters import ALL, BatchIndex, CompiledFilter
from pulse.log_service.wire import length_prefix
from pulse.v1 import logs_pb2

__all__ = ["ENTRY_OVERHEAD", "REPLAYED", "Chunk", "LogBuffer", "Subscriber", "encode_response"]

ENTRY_OVERHEAD = 512
# Accepted-at of replayed backlog entries: their age is not a delivery lag.
REPLAYED = -1.0
_ENTRIES_TAG = b"\x0a"  # MonitorResponse.entries: field 1, length-delimited


def _frame_length(n: int) -> int:
    return 1 + len(length_prefix(n)) + n


def _frame(encoded: bytes) -> bytes:
    """One entry as a ``MonitorResponse.entries`` element on the wire."""
    n = len(encoded)
    return _ENTRIES_TAG + length_prefix(n) + encoded


class Chunk:
    """Entries accepted together at the monotonic time ``accepted`` (or REPLAYED), each with
    its cost, and their encoding as ``MonitorResponse.entries``, made at most once."""

    __slots__ = ("_encoded", "_frames", "accepted", "entries", "size", "sizes")

    def __init__(
        self,
        entries: list[logs_pb2.LogEntry],
        sizes: list[int],
        accepted: float,
        frames: list[bytes] | None = None,
    ) -> None:
        self.entries, self.sizes, self.accepted = entries, sizes, accepted
        self.size = sum(sizes)
        self._frames = frames
        self._encoded: bytes | None = None

    def __len__(self) -> int:
        return len(self.entries)

    def encoded(self) -> bytes:
        if self._encoded is None:
            frames = self._frames or [_frame(e.SerializeToString()) for e in self.entries]
            self._encoded = b"".join(frames)
            self._frames = None  # the joined bytes are all a queue keeps
        return self._encoded

    def tail(self, start: int) -> Chunk:
        """The entries from ``start`` on, as a chunk of their own, its encoding cut from this
        one's when there is one (a slow subscriber's queue keeps the newest part of a chunk)."""
        rest = Chunk(self.entries[start:], self.sizes[start:], self.accepted)
        if self._encoded is not None:
            cut = sum(_frame_length(size - ENTRY_OVERHEAD) for size in self.sizes[:start])
            rest._encoded = self._encoded[cut:]
        elif self._frames is not None:
            rest._frames = self._frames[start:]
        return rest


def encode_response(chunks: Iterable[Chunk], revision: int, dropped: int) -> bytes:
    """A serialized ``MonitorResponse`` of the chunks' entries, ``revision`` and ``dropped``."""
    tail = logs_pb2.MonitorResponse(filter_revision=revision, dropped=dropped).SerializeToString()
    return b"".join([*(chunk.encoded() for chunk in chunks), tail])


def _split(
    entries: list[logs_pb2.LogEntry],
    sizes: list[int],
    frames: list[bytes] | None,
    accepted: float,
    max_entries: int,
    max_bytes: int,
) -> list[Chunk]:
    """Chunks of at most ``max_entries`` entries and ``max_bytes`` (at least one entry each)."""
    if len(entries) <= max_entries and sum(sizes) <= max_bytes:
        return [Chunk(entries, sizes, accepted, frames)]
    chunks, start, total = [], 0, 0
    for i, size in enumerate(sizes):
        if i > start and (i - start >= max_entries or total + size > max_bytes):
            chunks.append(
                Chunk(entries[start:i], sizes[start:i], accepted, _part(frames, start, i))
            )
            start, total = i, 0
        total += size
    chunks.append(Chunk(entries[start:], sizes[start:], accepted, _part(frames, start, None)))
    return chunks


def _part(frames: list[bytes] | None, start: int, end: int | None) -> list[bytes] | None:
    return None if frames is None else frames[start:end]


def _cut(chunk: Chunk, over_count: int, over_bytes: int) -> int:
    """How many of the chunk's oldest entries must go to shed ``over_count`` entries and
    ``over_bytes`` bytes (all of them when that is not enough)."""
    if over_count >= len(chunk) or over_bytes >= chunk.size:
        return len(chunk)
    cut = max(over_count, 0)
    if over_bytes > 0:
        cut = max(cut, bisect.bisect_left(list(itertools.accumulate(chunk.sizes)), over_bytes) + 1)
    return cut


class _Queue:
    """Chunks bounded by entries and bytes; beyond either, the oldest entries go."""

    def __init__(self, capacity: int, max_bytes: int) -> None:
        self.chunks: deque[Chunk] = deque()
        self.capacity, self.max_bytes = capacity, max_bytes
        self.count = self.bytes = 0

    def __len__(self) -> int:
        return self.count

    def push(self, chunk: Chunk) -> None:
        self.chunks.append(chunk)
        self.count += len(chunk)
        self.bytes += chunk.size

    def pop(self) -> Chunk:
        chunk = self.chunks.popleft()
        self.count -= len(chunk)
        self.bytes -= chunk.size
        return chunk

    def trim(self) -> int:
        """Drop the oldest entries until within both bounds; how many were dropped."""
        dropped = 0
        while self.count > self.capacity or self.bytes > self.max_bytes:
            oldest = self.pop()
            cut = _cut(
                oldest,
                self.count + len(oldest) - self.capacity,
                self.bytes + oldest.size - self.max_bytes,
            )
            if cut < len(oldest):
                rest = oldest.tail(cut)
                self.chunks.appendleft(rest)
                self.count += len(rest)
                self.bytes += rest.size
            dropped += cut
        return dropped

    def clear(self) -> None:
        self.chunks.clear()
        self.count = self.bytes = 0


class Subscriber:
    """One Monitor call: its filter and a bounded queue that drops the oldest entries.

    ``on_drop`` is told of every drop when it happens, so a subscriber that never reads again
    is still counted.
    """

    def __init__(
        self, capacity: int, max_bytes: int, on_drop: Callable[[int], None] = lambda _: None
    ) -> None:
        self.queue = _Queue(capacity, max_bytes)
        self.filter: CompiledFilter | None = None
        self.revision = 0
        self.dropped = 0
        self.ready = asyncio.Event()
        self._on_drop = on_drop

    def offer(self, chunks: list[Chunk]) -> None:
        """Queue chunks this subscriber's filter matched, without ever waiting."""
        queue = self.queue
        for chunk in chunks:
            queue.push(chunk)
        dropped = queue.trim()
        if dropped:
            self.dropped += dropped
            self._on_drop(dropped)
        self.ready.set()

    def replace_filter(self, flt: CompiledFilter, backlog: list[Chunk]) -> None:
        """A new filter: what was queued for the old one is dropped silently, and so is the
        oldest of the backlog beyond the queue's bounds (it was never asked for twice)."""
        self.filter = flt
        self.revision += 1
        self.queue.clear()
        for chunk in backlog:
            self.queue.push(chunk)
        self.queue.trim()
        self.dropped = 0
        self.ready.set()

    def take(self, limit: int, max_bytes: int) -> list[Chunk]:
        """Whole chunks of at most ``limit`` entries and ``max_bytes`` in all (at least one)."""
        queue, taken, count, size = self.queue, [], 0, 0
        while queue.chunks:
            head = queue.chunks[0]
            if taken and (count + len(head) > limit or size + head.size > max_bytes):
                break
            taken.append(queue.pop())
            count += len(head)
            size += head.size
        if not queue.chunks:
            self.ready.clear()
        return taken


class LogBuffer:
    """Assigns the global sequence, keeps the newest entries within ``capacity`` and
    ``max_bytes``, feeds subscribers. Chunks are at most ``chunk_entries`` and
    ``chunk_bytes``: one Monitor response's worth."""

    def __init__(
        self,
        capacity: int,
        max_bytes: int,
        chunk_entries: int = 100,
        chunk_bytes: int = 128 * 1024,
    ) -> None:
        self.capacity = capacity
        self.max_bytes = max_bytes
        self.chunk_entries, self.chunk_bytes = chunk_entries, chunk_bytes
        self._ring = _Queue(capacity, max_bytes)
        self._sequence = 0
        self.subscribers: set[Subscriber] = set()

    def __len__(self) -> int:
        return len(self._ring)

    @property
    def bytes(self) -> int:
        return self._ring.bytes

    def append(self, entries: list[logs_pb2.LogEntry]) -> None:
        """Give the entries the next sequences and keep them."""
        sequence = self._sequence
        for entry in entries:
            sequence += 1
            entry.sequence = sequence
        self._sequence = sequence
        self.extend(entries, time.monotonic())

    def extend(self, entries: list[logs_pb2.LogEntry], accepted: float) -> None:
        """Keep entries whose sequence is set, accepted at the monotonic time ``accepted`` (or
        REPLAYED), and offer them to every subscriber whose filter matches them."""
        if not entries:
            return
        encoded = [entry.SerializeToString() for entry in entries]
        sizes = [len(e) + ENTRY_OVERHEAD for e in encoded]
        frames = [_frame(e) for e in encoded] if self.subscribers else None
        for chunk in _split(entries, sizes, None, accepted, self.chunk_entries, self.chunk_bytes):
            self._ring.push(chunk)
        self._ring.trim()
        if frames is not None:
            self._fan_out(entries, sizes, frames, accepted)

    def _fan_out(
        self,
        entries: list[logs_pb2.LogEntry],
        sizes: list[int],
        frames: list[bytes],
        accepted: float,
    ) -> None:
        """Match the batch once per distinct filter and give every subscriber the chunks of
        what its filter matched, shared with every other subscriber that matched the same."""
        index = BatchIndex(entries)
        by_filter: dict[CompiledFilter, list[Chunk] | None] = {}
        by_match: dict[tuple[int, ...] | object, list[Chunk]] = {}
        for subscriber in self.subscribers:
            flt = subscriber.filter
            if flt is None:
                continue
            if flt not in by_filter:
                positions = flt.select(index)
                key = positions if positions is ALL else tuple(positions)
                if key not in by_match:
                    by_match[key] = self._chunks(entries, sizes, frames, accepted, positions)
                by_filter[flt] = by_match[key] or None
            chunks = by_filter[flt]
            if chunks:
                subscriber.offer(chunks)

    def _chunks(
        self,
        entries: list[logs_pb2.LogEntry],
        sizes: list[int],
        frames: list[bytes],
        accepted: float,
        positions: object,
    ) -> list[Chunk]:
        if positions is not ALL:
            entries = [entries[i] for i in positions]  # type: ignore[attr-defined]
            sizes = [sizes[i] for i in positions]  # type: ignore[attr-defined]
            frames = [frames[i] for i in positions]  # type: ignore[attr-defined]
        if not entries:
            return []
        return _split(entries, sizes, frames, accepted, self.chunk_entries, self.chunk_bytes)

    def backlog(self, flt: CompiledFilter, limit: int, scan: int) -> tuple[list[Chunk], int]:
        """The ``limit`` most recent matching entries among the newest ``scan``, oldest first,
        as replayed chunks, and how many entries were looked at."""
        if limit <= 0 or scan <= 0:
            return [], 0
        found: list[logs_pb2.LogEntry] = []
        found_sizes: list[int] = []
        examined = 0
        for chunk in reversed(self._ring.chunks):
            for entry, size in zip(reversed(chunk.entries), reversed(chunk.sizes), strict=True):
                if examined >= scan or len(found) == limit:
                    break
                examined += 1
                if flt.matches(entry):
                    found.append(entry)
                    found_sizes.append(size)
            if examined >= scan or len(found) == limit:
                break
        found.reverse()
        found_sizes.reverse()
        if not found:
            return [], examined
        chunks = _split(found, found_sizes, None, REPLAYED, self.chunk_entries, self.chunk_bytes)
        return chunks, examined
