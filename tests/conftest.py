"""Fixtures shared by Pulse's tests: a real Pulse server on an ephemeral loopback port."""

from __future__ import annotations

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
from shared_state import Engines, start_engines

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


@pytest.fixture
async def pulse_server(
    tmp_path: Path,
) -> AsyncIterator[Callable[..., Awaitable[RunningPulse]]]:
    """Async factory: ``srv = await pulse_server(ingest={"max_batch_entries": 10})``."""
    started: list[RunningPulse] = []

    async def start(telemetry: Telemetry | None = None, **overrides: Any) -> RunningPulse:
        settings = make_settings(tmp_path, **overrides)
        telemetry = telemetry or build_test_telemetry()
        server = PulseServer(settings, telemetry)
        await server.start()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}")
        running = RunningPulse(server, settings, telemetry, channel)
        started.append(running)
        return running

    yield start
    for running in reversed(started):
        await running.channel.close()
        await running.server.stop(grace=0.5)


@pytest.fixture(scope="session")
def engines() -> Iterator[Engines]:
    """PostgreSQL and NATS JetStream on loopback for the whole session."""
    running = start_engines()
    yield running
    running.down()
    shutil.rmtree(running.dir, ignore_errors=True)
    shutil.rmtree(running.postgresql_dir(), ignore_errors=True)
