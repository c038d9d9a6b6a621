"""Persistence of acknowledged readings in SQLite; every call runs off the event loop."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Reading", "SensorStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS readings (
    id TEXT PRIMARY KEY,
    sensor_id TEXT NOT NULL,
    time_ns INTEGER NOT NULL,
    temperature REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS readings_by_sensor_time ON readings (sensor_id, time_ns);
"""


@dataclass(frozen=True)
class Reading:
    id: str
    sensor_id: str
    time_ns: int
    temperature: float


class SensorStore:
    """One connection used by one worker thread, so SQLite sees a single writer."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sensor-store")
        self._db: sqlite3.Connection | None = None

    async def _run(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def open(self) -> None:
        await self._run(self._open)

    def _open(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self._path, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(_SCHEMA)
        self._db = db

    async def close(self) -> None:
        if self._db is not None:
            await self._run(self._db.close)
            self._db = None
        self._executor.shutdown(wait=True)

    async def insert_new(self, readings: list[Reading]) -> list[Reading]:
        """Insert the readings whose id is new and commit; return those inserted."""
        return await self._run(self._insert_new, readings)

    def _insert_new(self, readings: list[Reading]) -> list[Reading]:
        assert self._db is not None
        inserted = []
        with self._db:  # one transaction, committed before the caller acknowledges
            for r in readings:
                cursor = self._db.execute(
                    "INSERT OR IGNORE INTO readings (id, sensor_id, time_ns, temperature) "
                    "VALUES (?, ?, ?, ?)",
                    (r.id, r.sensor_id, r.time_ns, r.temperature),
                )
                if cursor.rowcount == 1:
                    inserted.append(r)
        return inserted

    async def load(self, window: int) -> list[tuple[str, int, list[tuple[int, float]]]]:
        """(sensor id, total readings, newest ``window`` readings) of every sensor."""
        return await self._run(self._load, window)

    def _load(self, window: int) -> list[tuple[str, int, list[tuple[int, float]]]]:
        assert self._db is not None
        out = []
        totals: Iterable = self._db.execute(
            "SELECT sensor_id, COUNT(*) FROM readings GROUP BY sensor_id"
        ).fetchall()
        for sensor_id, total in totals:
            rows = self._db.execute(
                "SELECT time_ns, temperature FROM readings WHERE sensor_id = ? "
                "ORDER BY time_ns DESC LIMIT ?",
                (sensor_id, window),
            ).fetchall()
            out.append((sensor_id, total, list(reversed(rows))))
        return out

    async def healthy(self) -> bool:
        try:
            await self._run(
                lambda: self._db is not None and self._db.execute("SELECT 1").fetchone()
            )
        except sqlite3.Error:
            return False
        return self._db is not None
