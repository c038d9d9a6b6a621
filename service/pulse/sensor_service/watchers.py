"""Fan-out of new summaries to WatchSummaries calls; a slow watcher keeps only the latest
summary per sensor, so Record never waits for anyone."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from pulse.sensor_service.window import Summary

__all__ = ["Watcher", "Watchers"]


class Watcher:
    def __init__(self, sensor_ids: Iterable[str]) -> None:
        self.sensor_ids = frozenset(sensor_ids)
        self._pending: dict[str, Summary] = {}
        self._ready = asyncio.Event()

    def wants(self, sensor_id: str) -> bool:
        return not self.sensor_ids or sensor_id in self.sensor_ids

    def offer(self, summary: Summary) -> None:
        self._pending[summary.sensor_id] = summary  # replaces an unsent older one
        self._ready.set()

    async def next_batch(self, timeout_s: float) -> list[Summary]:
        """The summaries offered since the last batch; empty when none came within
        ``timeout_s``."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._ready.wait()
        except TimeoutError:
            return []
        self._ready.clear()
        batch, self._pending = list(self._pending.values()), {}
        return batch


class Watchers:
    def __init__(self) -> None:
        self._watchers: set[Watcher] = set()

    def __len__(self) -> int:
        return len(self._watchers)

    def add(self, watcher: Watcher) -> None:
        self._watchers.add(watcher)

    def remove(self, watcher: Watcher) -> None:
        self._watchers.discard(watcher)

    def publish(self, summary: Summary) -> None:
        for watcher in self._watchers:
            if watcher.wants(summary.sensor_id):
                watcher.offer(summary)
