"""The shared sensor state on PostgreSQL, for several replicas (``sensors.database_url``).

The database computes every summary (``migrations.pulse_record_reading``) and announces it with
NOTIFY; each replica keeps one connection that LISTENs and hands every summary to its watchers,
so a reading recorded on one replica reaches the watchers of all. Calls go through a pool with a
time limit; when the database cannot be reached they raise ``StateUnavailable`` naming the
cause, and a background task reconnects the listener by itself, then catches up with the
summaries it missed (by revision), so no watcher is left behind after an outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterable
from urllib.parse import urlsplit

import asyncpg
from opentelemetry.metrics import Meter
from opentelemetry.trace import Tracer

from pulse.sensor_service.migrations import CHANNEL, LOCK_KEY, MIGRATIONS, TABLE
from pulse.sensor_service.state import StateUnavailable, SummaryListener
from pulse.sensor_service.store import Reading
from pulse.sensor_service.window import Summary
from pulse.telemetry.clients import DatabaseCalls

__all__ = ["PostgresSensorState", "unreachable"]

_log = logging.getLogger("pulse.sensors")

# What a lost, unreachable or refusing database raises: the client may retry; anything else is
# a bug.
_UNREACHABLE = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,  # shutting down, starting up (57P0x)
    asyncpg.exceptions.InsufficientResourcesError,  # too many connections, disk full (53xxx)
    asyncpg.exceptions.InvalidAuthorizationSpecificationError,  # wrong user or password (28xxx)
    asyncpg.exceptions.InvalidCatalogNameError,  # no such database (3D000)
    asyncpg.exceptions.ObjectNotInPrerequisiteStateError,  # not accepting connections (55000)
)
# application_name of the connections, so pg_stat_activity tells which is which.
POOL_NAME = "pulse-sensors"
LISTENER_NAME = "pulse-sensors-listener"
RETRY_MIN_S = 0.2
RETRY_MAX_S = 5.0


def unreachable(error: BaseException) -> bool:
    return isinstance(error, _UNREACHABLE)


def _describe(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0][:200]


def _summary(row: asyncpg.Record | dict) -> Summary:
    return Summary(
        sensor_id=row["sensor_id"],
        min=row["min_temperature"],
        max=row["max_temperature"],
        avg=row["avg_temperature"],
        size=row["window_size"],
        newest_ns=row["newest_ns"],
        total=row["readings_total"],
    )


class PostgresSensorState:
    def __init__(
        self,
        url: str,
        window: int,
        tracer: Tracer,
        meter: Meter,
        *,
        pool_size: int = 10,
        timeout_s: float = 5.0,
    ) -> None:
        self._url = url
        self._window = window
        self._pool_size = pool_size
        self._timeout_s = timeout_s
        parts = urlsplit(url)
        self._calls = DatabaseCalls(
            tracer, meter, parts.hostname or "", parts.port or 5432, parts.path.lstrip("/")
        )
        self._pool: asyncpg.Pool | None = None
        self._listeners: list[SummaryListener] = []
        self._revisions: dict[str, int] = {}
        self._high = 0  # the highest revision handed to listeners
        self._migrated = False
        self._listening = False
        self._problem = "not connected yet"
        self._task: asyncio.Task | None = None

    # Lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        # min_size=0: creating the pool connects nothing, so Pulse starts while the database
        # is still coming up and stays unready until it is reached.
        self._pool = await asyncpg.create_pool(
            self._url,
            min_size=0,
            max_size=self._pool_size,
            timeout=self._timeout_s,
            command_timeout=self._timeout_s,
            server_settings={"application_name": POOL_NAME},
        )
        self._task = asyncio.create_task(self._supervise(), name="sensor-database")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._pool is not None:
            with contextlib.suppress(*_UNREACHABLE):
                await asyncio.wait_for(self._pool.close(), self._timeout_s)
            self._pool.terminate()

    async def healthy(self) -> bool:
        return self._migrated and self._listening

    def listen(self, listener: SummaryListener) -> None:
        self._listeners.append(listener)

    # Calls -------------------------------------------------------------------------------------

    def _ready_pool(self) -> asyncpg.Pool:
        if not self._migrated or self._pool is None:
            raise StateUnavailable(f"sensor database not reached yet: {self._problem}")
        return self._pool

    async def record(self, reading: Reading) -> bool:
        pool = self._ready_pool()
        try:
            with self._calls.call("SELECT", "pulse_record_reading"):
                row = await pool.fetchrow(
                    "SELECT revision FROM pulse_record_reading($1, $2, $3, $4, $5)",
                    reading.id,
                    reading.sensor_id,
                    reading.time_ns,
                    reading.temperature,
                    self._window,
                )
        except _UNREACHABLE as error:
            raise StateUnavailable(f"sensor database unreachable: {_describe(error)}") from None
        return row is not None

    async def summary(self, sensor_id: str) -> Summary | None:
        pool = self._ready_pool()
        try:
            with self._calls.call("SELECT", "sensor_summaries"):
                row = await pool.fetchrow(
                    "SELECT * FROM sensor_summaries WHERE sensor_id = $1", sensor_id
                )
        except _UNREACHABLE as error:
            raise StateUnavailable(f"sensor database unreachable: {_describe(error)}") from None
        return None if row is None else _summary(row)

    async def summaries(self, sensor_ids: Iterable[str] = ()) -> list[Summary]:
        pool = self._ready_pool()
        ids = list(sensor_ids)
        try:
            with self._calls.call("SELECT", "sensor_summaries"):
                if ids:
                    rows = await pool.fetch(
                        "SELECT * FROM sensor_summaries WHERE sensor_id = ANY($1::text[])", ids
                    )
                else:
                    rows = await pool.fetch("SELECT * FROM sensor_summaries")
        except _UNREACHABLE as error:
            raise StateUnavailable(f"sensor database unreachable: {_describe(error)}") from None
        return [_summary(row) for row in rows]

    # Migrations and the change feed --------------------------------------------------------------

    async def _supervise(self) -> None:
        """Migrate once, then keep a LISTEN connection; retry with backoff whenever the
        database is out of reach."""
        delay = RETRY_MIN_S
        while True:
            try:
                if not self._migrated:
                    await self._migrate()
                    self._migrated = True
                    _log.info("sensor database ready", extra={"db.migrations": len(MIGRATIONS)})
                await self._listen_until_lost()
                delay = RETRY_MIN_S
            except Exception as error:  # the supervisor never dies: it retries
                if self._problem != _describe(error):
                    _log.warning(
                        "sensor database unreachable: %s; retrying",
                        _describe(error),
                        exc_info=not unreachable(error),
                    )
                self._problem = _describe(error)
            self._listening = False
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_S)

    async def _connect(self) -> asyncpg.Connection:
        return await asyncpg.connect(
            self._url,
            timeout=self._timeout_s,
            command_timeout=self._timeout_s,
            server_settings={"application_name": LISTENER_NAME},
        )

    async def _migrate(self) -> None:
        connection = await self._connect()
        try:
            with self._calls.call("MIGRATE", TABLE):
                # Replicas starting together wait here for the first one to finish.
                await connection.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
                try:
                    await self._apply_migrations(connection)
                finally:
                    await connection.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
        finally:
            await connection.close(timeout=self._timeout_s)

    async def _apply_migrations(self, connection: asyncpg.Connection) -> None:
        await connection.execute(
            f"CREATE TABLE IF NOT EXISTS {TABLE} (version integer PRIMARY KEY, "
            "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        applied = {row["version"] for row in await connection.fetch(f"SELECT version FROM {TABLE}")}
        for version, name, sql in MIGRATIONS:
            if version in applied:
                continue
            async with connection.transaction():
                await connection.execute(sql)
                await connection.execute(
                    f"INSERT INTO {TABLE} (version, name) VALUES ($1, $2)", version, name
                )
            _log.info("sensor database migrated", extra={"db.migration": version})
        known = MIGRATIONS[-1][0]
        if applied and max(applied) > known:
            _log.warning(
                "sensor database schema %d is newer than this Pulse's %d", max(applied), known
            )
        # Summaries from here on reach this replica's watchers: through NOTIFY, or the catch-up.
        self._high = await connection.fetchval(
            "SELECT coalesce(max(revision), 0) FROM sensor_summaries"
        )

    async def _listen_until_lost(self) -> None:
        connection = await self._connect()
        lost = asyncio.Event()
        connection.add_termination_listener(lambda _: lost.set())
        try:
            await connection.add_listener(CHANNEL, self._notified)
            await self._catch_up(connection)
            self._listening = True
            self._problem = ""
            while not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), self._timeout_s)
                if not lost.is_set():
                    # Nothing tells a connection that silently died: ask.
                    await connection.fetchval("SELECT 1")
            raise ConnectionResetError("listening connection lost")
        finally:
            self._listening = False
            connection.terminate()

    async def _catch_up(self, connection: asyncpg.Connection) -> None:
        """Hand over the summaries that changed while no connection listened."""
        with self._calls.call("SELECT", "sensor_summaries"):
            rows = await connection.fetch(
                "SELECT * FROM sensor_summaries WHERE revision > $1 ORDER BY revision",
                self._high,
            )
        for row in rows:
            self._deliver(_summary(row), row["revision"])

    def _notified(self, connection: object, pid: int, channel: str, payload: str) -> None:
        row = json.loads(payload)
        self._deliver(_summary(row), row["revision"])

    def _deliver(self, summary: Summary, revision: int) -> None:
        # A summary older than one already handed over (a catch-up racing a notification)
        # would show a watcher the past.
        if revision <= self._revisions.get(summary.sensor_id, 0):
            return
        self._revisions[summary.sensor_id] = revision
        self._high = max(self._high, revision)
        for listener in self._listeners:
            listener(summary)
