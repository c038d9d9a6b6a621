"""Fixtures shared by Pulse's tests: a real Pulse server on an ephemeral loopback port."""

from __future__ import annotations

import asyncio
import shutil
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from pulse.config import Settings
from pulse.server.app import PulseServer
from pulse.telemetry import Telemetry, build_test_telemetry
from shared_state import (
    Engines,
    drop,
    fresh_database,
    fresh_stream,
    refuse_connections,
    start_engines,
)

# The live stack and Pulse, one per session for the end-to-end and the browser tests alike, and
# the browser tests' Chromium.
pytest_plugins = ["live_stack", "browser.chromium"]


@dataclass
class RunningPulse:
    server: PulseServer
    settings: Settings
    telemetry: Telemetry
    channel: grpc.aio.Channel

    @property
    def shared(self) -> bool:
        """Whether it runs on the shared engines (PostgreSQL, NATS JetStream)."""
        return self.settings.bus.url is not None

    async def break_sensor_database(self) -> None:
        """The sensor database stops answering under the running server; returns once the
        server's readiness says so."""
        if self.shared:
            url = self.settings.sensors.database_url
            assert url is not None
            await refuse_connections(url.get_secret_value())
        else:
            store = self.server.components[2].state._store
            await store._run(store._db.close)
        async with asyncio.timeout(10):
            while True:
                ready, _ = await self.server.readiness()
                if not ready:
                    return
                await asyncio.sleep(0.02)

    @property
    def grpc_address(self) -> str:
        return f"127.0.0.1:{self.server.grpc_port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.server.admin_port}"


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    base = {
        "data_dir": tmp_path,
        "grpc": {"host": "127.0.0.1", "port": 0, "shutdown_grace_s": 1.0},
        "admin": {"host": "127.0.0.1", "port": 0},
        "telemetry": {"stream_tick_s": 0.2},
    }
    return Settings(**_merge(base, overrides))


async def shared_state(engines: Engines) -> dict[str, Any]:
    """Settings of a Pulse on the shared engines: a fresh database and stream of its own."""
    stream = fresh_stream()
    return {
        "sensors": {"database_url": await fresh_database(engines)},
        "bus": {
            "url": engines.nats_url,
            "stream": stream,
            "subject": f"pulse.{stream}",
            "max_bytes": 8 * 1024 * 1024,
        },
    }


async def until_ready(server: PulseServer, timeout_s: float = 30.0) -> None:
    """Wait until every component is ready and gRPC health says so."""
    async with asyncio.timeout(timeout_s):
        while True:
            if await server.health_follower.update():
                return
            await asyncio.sleep(0.02)


@pytest.fixture(params=["embedded", "shared"])
async def pulse_server(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Callable[..., Awaitable[RunningPulse]]]:
    """Async factory: ``srv = await pulse_server(ingest={"max_batch_entries": 10})``. Every
    test that uses it runs twice: on the embedded state of one process, and on the shared
    engines (PostgreSQL, NATS JetStream), where each server it starts shares the test's
    database and stream."""
    started: list[RunningPulse] = []
    state: dict[str, Any] = {}
    if request.param == "shared":
        engines = request.getfixturevalue("engines")
        state = await shared_state(engines)

    async def start(telemetry: Telemetry | None = None, **overrides: Any) -> RunningPulse:
        settings = make_settings(tmp_path, **_merge(state, overrides))
        telemetry = telemetry or build_test_telemetry()
        server = PulseServer(settings, telemetry)
        await server.start()
        await until_ready(server)
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}")
        running = RunningPulse(server, settings, telemetry, channel)
        started.append(running)
        return running

    yield start
    for running in reversed(started):
        await running.channel.close()
        await running.server.stop(grace=0.5)
    if state:
        await drop(engines, state["sensors"]["database_url"], state["bus"]["stream"])


@pytest.fixture(scope="session")
def engines() -> Iterator[Engines]:
    """PostgreSQL and NATS JetStream on loopback for the whole session."""
    running = start_engines()
    cluster = running.postgresql_dir()
    yield running
    running.down()
    for directory in (running.dir, cluster):
        shutil.rmtree(directory, ignore_errors=True)
