"""The bounded ring buffer of accepted entries and the fan-out to Monitor subscribers."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Iterable

from pulse.log_service.filters import CompiledFilter
from pulse.v1 import logs_pb2

__all__ = ["REPLAYED", "LogBuffer", "Stored", "Subscriber"]

# An accepted entry and the monotonic time it was accepted (for delivery lag).
Stored = tuple[logs_pb2.LogEntry, float]
# Accepted-at of replayed backlog entries: their age is not a delivery lag.
REPLAYED = -1.0


class Subscriber:
    """One Monitor call: its filter and a bounded queue that drops the oldest entries."""

    def __init__(self, capacity: int) -> None:
        self.queue: deque[Stored] = deque()
        self.capacity = capacity
        self.filter: CompiledFilter | None = None
        self.revision = 0
        self.dropped = 0
        self.ready = asyncio.Event()

    def offer(self, items: Iterable[Stored]) -> None:
        """Queue matching entries without ever waiting: O(1) per entry."""
        flt = self.filter
        if flt is None:
            return
        queue, added = self.queue, False
        for item in items:
            if flt.matches(item[0]):
                queue.append(item)
                added = True
        overflow = len(queue) - self.capacity
        if overflow > 0:
            for _ in range(overflow):
                queue.popleft()
            self.dropped += overflow
        if added:
            self.ready.set()

    def replace_filter(self, flt: CompiledFilter, backlog: list[Stored]) -> None:
        """A new filter: what was queued for the old one is dropped silently."""
        self.filter = flt
        self.revision += 1
        self.queue.clear()
        self.queue.extend(backlog[-self.capacity :])
        self.ready.set()

    def take(self, limit: int) -> list[Stored]:
        queue = self.queue
        n = min(limit, len(queue))
        batch = [queue.popleft() for _ in range(n)]
        if not queue:
            self.ready.clear()
        return batch


class LogBuffer:
    """Assigns the global sequence, keeps the newest ``capacity`` entries, feeds subscribers."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._ring: deque[Stored] = deque(maxlen=capacity)
        self._sequence = 0
        self.subscribers: set[Subscriber] = set()

    def __len__(self) -> int:
        return len(self._ring)

    def append(self, entries: list[logs_pb2.LogEntry]) -> list[Stored]:
        now = time.monotonic()
        stored = []
        for entry in entries:
            self._sequence += 1
            entry.sequence = self._sequence
            stored.append((entry, now))
        self._ring.extend(stored)
        for subscriber in self.subscribers:
            subscriber.offer(stored)
        return stored

    def backlog(self, flt: CompiledFilter, limit: int) -> list[Stored]:
        """The ``limit`` most recent matching entries, oldest first."""
        if limit <= 0:
            return []
        found: list[Stored] = []
        for item in reversed(self._ring):
            if flt.matches(item[0]):
                found.append(item)
                if len(found) == limit:
                    break
        found.reverse()
        return [(entry, REPLAYED) for entry, _ in found]
