"""The shared engines of the tests' scaled Pulse: one PostgreSQL and one NATS server for the
session (deploy/local/engines.py), and a fresh database or stream name per test."""

from __future__ import annotations

import contextlib
import itertools
import os
import sys
import tempfile
from pathlib import Path

import asyncpg
import nats
import nats.js.errors

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "deploy" / "local"))
from engines import Engines

from helpers import STACK_PORT_OFFSET

__all__ = [
    "Engines",
    "drop",
    "fresh_database",
    "fresh_stream",
    "refuse_connections",
    "start_engines",
]

_names = itertools.count(1)


def start_engines() -> Engines:
    """Both engines on the tests' ports (PULSE_STACK_PORT_OFFSET moves them), state in a
    temporary directory of their own."""
    env = dict(os.environ)
    env.setdefault("PULSE_STACK_PORT_OFFSET", str(STACK_PORT_OFFSET))
    engines = Engines(Path(tempfile.mkdtemp(prefix="pulse-engines-")), env)
    engines.up(progress=lambda line: print(line, file=sys.stderr))
    return engines


async def fresh_database(engines: Engines) -> str:
    """The URL of a new, empty database."""
    name = f"test_{os.getpid()}_{next(_names)}"
    connection = await asyncpg.connect(engines.postgresql_url("postgres"))
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return engines.postgresql_url(name)


async def refuse_connections(database_url: str) -> None:
    """The database stops answering: its connections are cut and new ones refused."""
    name = database_url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(database_url.rsplit("/", 1)[0] + "/postgres")
    try:
        await admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
        )
    finally:
        await admin.close()


def fresh_stream() -> str:
    """A stream name no other test uses."""
    return f"TEST_{os.getpid()}_{next(_names)}"


async def drop(engines: Engines, database_url: str | None, stream: str | None) -> None:
    """Remove a test's database and stream: JetStream reserves each stream's bytes."""
    if stream is not None:
        connection = await nats.connect(engines.nats_url)
        try:
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await connection.jetstream().delete_stream(stream)
        finally:
            await connection.close()
    if database_url is not None:
        admin = await asyncpg.connect(engines.postgresql_url("postgres"))
        try:
            name = database_url.rsplit("/", 1)[1]
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
