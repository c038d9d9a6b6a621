"""Batch ids seen recently, so a retried batch is acknowledged but applied once."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["BatchDeduplicator"]


class BatchDeduplicator:
    def __init__(
        self, window_s: float, max_batches: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._window, self._max, self._clock = window_s, max_batches, clock
        self._seen: OrderedDict[str, float] = OrderedDict()

    def seen(self, batch_id: str) -> bool:
        """Whether ``batch_id`` was recorded within the window (an empty id never is)."""
        if not batch_id:
            return False
        self._expire()
        return batch_id in self._seen

    def record(self, batch_id: str) -> None:
        if not batch_id or self._window <= 0:
            return
        self._seen[batch_id] = self._clock()
        self._seen.move_to_end(batch_id)
        while len(self._seen) > self._max:
            self._seen.popitem(last=False)

    def _expire(self) -> None:
        horizon = self._clock() - self._window
        while self._seen:
            oldest, stamp = next(iter(self._seen.items()))
            if stamp >= horizon:
                break
            del self._seen[oldest]
