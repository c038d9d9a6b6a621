"""Hierarchical token buckets: global, per source, per task. An entry passes only if every
level has a token; a refused entry takes no token from any level."""

from __future__ import annotations

import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["KEY_OVERHEAD", "Bucket", "HierarchicalLimiter", "Limits"]


@dataclass(frozen=True)
class Limits:
    global_rate: float
    global_burst: float
    source_rate: float
    source_burst: float
    task_rate: float
    task_burst: float
    max_tracked_keys: int
    max_tracked_key_bytes: int


class Bucket:
    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate, self.burst = rate, burst
        self.tokens, self.stamp = burst, now

    def refill(self, now: float) -> float:
        if now > self.stamp:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
        return self.tokens


# Bytes a tracked key costs beyond its own: its bucket, the str object, the OrderedDict node.
KEY_OVERHEAD = 200


class _Buckets:
    """Buckets per key, least recently used evicted beyond ``limit`` keys or ``max_bytes``."""

    def __init__(self, rate: float, burst: float, limit: int, max_bytes: int) -> None:
        self._rate, self._burst, self._limit, self._max_bytes = rate, burst, limit, max_bytes
        self._buckets: OrderedDict[str, Bucket] = OrderedDict()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._buckets)

    def can_take(self, counts: Counter[str], now: float) -> bool:
        """Whether every key has its count of tokens now; tracks no new key (one would
        start full)."""
        buckets, burst = self._buckets, self._burst
        for key, count in counts.items():
            bucket = buckets.get(key)
            if (burst if bucket is None else bucket.refill(now)) < count:
                return False
        return True

    def take(self, counts: Counter[str], now: float) -> None:
        """Take each key's count of tokens (after ``can_take``)."""
        buckets = self._buckets
        for key, count in counts.items():
            bucket = buckets.get(key)
            if bucket is None:
                bucket = self.get(key, now)
            else:
                buckets.move_to_end(key)
            bucket.tokens -= count

    def get(self, key: str, now: float) -> Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = Bucket(self._rate, self._burst, now)
            self.bytes += len(key) + KEY_OVERHEAD
            while len(self._buckets) > self._limit or self.bytes > self._max_bytes:
                evicted, _ = self._buckets.popitem(last=False)
                self.bytes -= len(evicted) + KEY_OVERHEAD
        else:
            self._buckets.move_to_end(key)
        return bucket


class HierarchicalLimiter:
    def __init__(self, limits: Limits, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._global = Bucket(limits.global_rate, limits.global_burst, clock())
        keys, key_bytes = limits.max_tracked_keys, limits.max_tracked_key_bytes
        self.sources = _Buckets(limits.source_rate, limits.source_burst, keys, key_bytes)
        self.tasks = _Buckets(limits.task_rate, limits.task_burst, keys, key_bytes)

    def now(self) -> float:
        return self._clock()

    def take_all(self, sources: list[str], tasks: list[str], now: float) -> bool:
        """Take one token per entry at every level if every bucket has enough for all of them,
        as ``take`` entry by entry would; else take nothing and return False."""
        n = len(sources)
        if self._global.refill(now) < n:
            return False
        by_task = Counter(tasks)
        by_task.pop("", None)  # entries without a task id have no task bucket
        levels = ((self.sources, Counter(sources)), (self.tasks, by_task))
        if not all(level.can_take(counts, now) for level, counts in levels):
            return False
        self._global.tokens -= n
        for level, counts in levels:
            level.take(counts, now)
        return True

    def take(self, source: str, task: str, now: float) -> str | None:
        """Take one token at every level and return None, or return the refusing scope."""
        g = self._global
        if g.refill(now) < 1:
            return "global"
        s = self.sources.get(source, now)
        if s.refill(now) < 1:
            return "source"
        t = self.tasks.get(task, now) if task else None
        if t is not None and t.refill(now) < 1:
            return "task"
        g.tokens -= 1
        s.tokens -= 1
        if t is not None:
            t.tokens -= 1
        return None
