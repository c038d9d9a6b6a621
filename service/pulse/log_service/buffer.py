"""The bounded ring buffer of accepted entries and the fan-out to Monitor subscribers.

Both are bounded by entries and by bytes: an entry's cost is its encoded size plus
``ENTRY_OVERHEAD``, the Python and protobuf objects around it (measured: about 400 bytes for a
small entry; bench/ and tests/abuse hold the total against the process's memory).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import NamedTuple

from pulse.log_service.filters import CompiledFilter
from pulse.v1 import logs_pb2

__all__ = ["ENTRY_OVERHEAD", "REPLAYED", "LogBuffer", "Stored", "Subscriber"]

ENTRY_OVERHEAD = 512
# Accepted-at of replayed backlog entries: their age is not a delivery lag.
REPLAYED = -1.0


class Stored(NamedTuple):
    """An accepted entry, the monotonic time it was accepted (for delivery lag), its cost."""

    entry: logs_pb2.LogEntry
    accepted: float
    size: int


class Subscriber:
    """One Monitor call: its filter and a bounded queue that drops the oldest entries.

    ``on_drop`` is told of every drop when it happens, so a subscriber that never reads again
    is still counted.
    """

    def __init__(
        self, capacity: int, max_bytes: int, on_drop: Callable[[int], None] = lambda _: None
    ) -> None:
        self.queue: deque[Stored] = deque()
        self.capacity = capacity
        self.max_bytes = max_bytes
        self.bytes = 0
        self.filter: CompiledFilter | None = None
        self.revision = 0
        self.dropped = 0
        self.ready = asyncio.Event()
        self._on_drop = on_drop

    def offer(self, items: Iterable[Stored]) -> None:
        """Queue matching entries without ever waiting: O(1) per entry."""
        flt = self.filter
        if flt is None:
            return
        queue, added = self.queue, 0
        for item in items:
            if flt.matches(item.entry):
                queue.append(item)
                self.bytes += item.size
                added += 1
        if added:
            self._trim()
            self.ready.set()

    def _trim(self) -> None:
        queue, dropped = self.queue, 0
        while queue and (len(queue) > self.capacity or self.bytes > self.max_bytes):
            self.bytes -= queue.popleft().size
            dropped += 1
        if dropped:
            self.dropped += dropped
            self._on_drop(dropped)

    def replace_filter(self, flt: CompiledFilter, backlog: list[Stored]) -> None:
        """A new filter: what was queued for the old one is dropped silently."""
        self.filter = flt
        self.revision += 1
        self.queue.clear()
        self.queue.extend(backlog)
        self.bytes = sum(item.size for item in backlog)
        self.dropped = 0
        queue = self.queue
        while queue and (len(queue) > self.capacity or self.bytes > self.max_bytes):
            self.bytes -= queue.popleft().size  # the oldest of the backlog: never asked twice
        self.ready.set()

    def take(self, limit: int, max_bytes: int) -> list[Stored]:
        """At most ``limit`` entries of at most ``max_bytes`` in all (always at least one)."""
        queue, batch, size = self.queue, [], 0
        while queue and len(batch) < limit:
            if batch and size + queue[0].size > max_bytes:
                break
            item = queue.popleft()
            size += item.size
            batch.append(item)
        self.bytes -= size
        if not queue:
            self.ready.clear()
        return batch


class LogBuffer:
    """Assigns the global sequence, keeps the newest entries within ``capacity`` and
    ``max_bytes``, feeds subscribers."""

    def __init__(self, capacity: int, max_bytes: int) -> None:
        self.capacity = capacity
        self.max_bytes = max_bytes
        self.bytes = 0
        self._ring: deque[Stored] = deque()
        self._sequence = 0
        self.subscribers: set[Subscriber] = set()

    def __len__(self) -> int:
        return len(self._ring)

    def append(self, entries: list[logs_pb2.LogEntry]) -> list[Stored]:
        """Give the entries the next sequences and keep them."""
        for entry in entries:
            self._sequence += 1
            entry.sequence = self._sequence
        return self.extend(entries, time.monotonic())

    def extend(self, entries: list[logs_pb2.LogEntry], accepted: float) -> list[Stored]:
        """Keep entries whose sequence is already set (by the log bus), accepted at the
        monotonic time ``accepted`` (or REPLAYED), and offer them to every subscriber."""
        stored = [Stored(entry, accepted, entry.ByteSize() + ENTRY_OVERHEAD) for entry in entries]
        ring = self._ring
        ring.extend(stored)
        self.bytes += sum(item.size for item in stored)
        while len(ring) > self.capacity or self.bytes > self.max_bytes:
            self.bytes -= ring.popleft().size
        for subscriber in self.subscribers:
            subscriber.offer(stored)
        return stored

    def backlog(self, flt: CompiledFilter, limit: int, scan: int) -> tuple[list[Stored], int]:
        """The ``limit`` most recent matching entries among the newest ``scan``, oldest first,
        and how many entries were looked at."""
        if limit <= 0 or scan <= 0:
            return [], 0
        found: list[Stored] = []
        examined = 0
        for item in reversed(self._ring):
            if examined >= scan:
                break
            examined += 1
            if flt.matches(item.entry):
                found.append(item)
                if len(found) == limit:
                    break
        found.reverse()
        return [item._replace(accepted=REPLAYED) for item in found], examined
