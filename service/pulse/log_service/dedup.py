"""Batch ids seen recently, so a retried batch is acknowledged but applied once.

Bounded by count and by bytes; the oldest ids are forgotten first.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["ID_OVERHEAD", "BatchDeduplicator"]

# Bytes an id costs beyond its own: the str object and the OrderedDict's node and slot.
ID_OVERHEAD = 160


class BatchDeduplicator:
    def __init__(
        self,
        window_s: float,
        max_batches: int,
        max_bytes: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._window, self._max, self._max_bytes, self._clock = (
            window_s,
            max_batches,
            max_bytes,
            clock,
        )
        self._seen: OrderedDict[str, float] = OrderedDict()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._seen)

    def seen(self, batch_id: str) -> bool:
        """Whether ``batch_id`` was recorded within the window (an empty id never is)."""
        if not batch_id:
            return False
        self._expire()
        return batch_id in self._seen

    def record(self, batch_id: str) -> None:
        if not batch_id or self._window <= 0:
            return
        if batch_id not in self._seen:
            self.bytes += len(batch_id) + ID_OVERHEAD
        self._seen[batch_id] = self._clock()
        self._seen.move_to_end(batch_id)
        while len(self._seen) > self._max or self.bytes > self._max_bytes:
            self._forget_oldest()

    def _forget_oldest(self) -> None:
        oldest, _ = self._seen.popitem(last=False)
        self.bytes -= len(oldest) + ID_OVERHEAD

    def _expire(self) -> None:
        horizon = self._clock() - self._window
        while self._seen:
            stamp = next(iter(self._seen.values()))
            if stamp >= horizon:
                break
            self._forget_oldest()
