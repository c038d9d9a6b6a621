"""The shared engines of the tests' scaled Pulse: one PostgreSQL and one NATS server for the
session (deploy/local/engines.py), and a fresh database or stream name per test."""

from __future__ import annotations

import itertools
import os
import sys
import tempfile
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "deploy" / "local"))
from engines import Engines

from helpers import STACK_PORT_OFFSET

__all__ = ["Engines", "fresh_database", "fresh_stream", "start_engines"]

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


def fresh_stream() -> str:
    """A stream name no other test uses."""
    return f"TEST_{os.getpid()}_{next(_names)}"
