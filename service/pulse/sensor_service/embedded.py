"""The embedded sensor state of one process: readings in SQLite in the data directory, the
summary of every sensor in memory (rebuilt from SQLite at start), new summaries handed to the
listeners of this process."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path

from pulse.sensor_service.state import StateUnavailable, SummaryListener
from pulse.sensor_service.store import Reading, SensorStore
from pulse.sensor_service.window import Summary, Window

__all__ = ["EmbeddedSensorState"]


class EmbeddedSensorState:
    def __init__(self, path: Path, window: int) -> None:
        self._store = SensorStore(path)
        self._capacity = window
        self._windows: dict[str, Window] = {}
        self._listeners: list[SummaryListener] = []
        self._open = False

    async def start(self) -> None:
        await self._store.open()
        for sensor_id, total, readings in await self._store.load(self._capacity):
            window = Window(sensor_id, self._capacity)
            for time_ns, value in readings:
                window.add(time_ns, value)
            window.total = total
            self._windows[sensor_id] = window
        self._open = True

    async def stop(self) -> None:
        self._open = False
        await self._store.close()

    async def healthy(self) -> bool:
        return self._open and await self._store.healthy()

    def listen(self, listener: SummaryListener) -> None:
        self._listeners.append(listener)

    async def record(self, reading: Reading) -> bool:
        try:
            inserted = await self._store.insert_new([reading])
        except sqlite3.OperationalError as error:  # disk full, file gone: not the client's fault
            raise StateUnavailable(f"sensor database: {error}") from None
        if not inserted:
            return False
        window = self._windows.get(reading.sensor_id)
        if window is None:
            window = self._windows[reading.sensor_id] = Window(reading.sensor_id, self._capacity)
        window.add(reading.time_ns, reading.temperature)
        summary = window.summary()
        for listener in self._listeners:
            listener(summary)
        return True

    async def summary(self, sensor_id: str) -> Summary | None:
        window = self._windows.get(sensor_id)
        return None if window is None else window.summary()

    async def summaries(self, sensor_ids: Iterable[str] = ()) -> list[Summary]:
        wanted = frozenset(sensor_ids)
        return [
            window.summary()
            for window in list(self._windows.values())
            if not wanted or window.sensor_id in wanted
        ]
