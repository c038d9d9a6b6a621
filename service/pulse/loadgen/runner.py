"""Runs every actor against one Pulse, prints a live summary, stops cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import random
import sys
from dataclasses import dataclass, field
from typing import TextIO

from opentelemetry.instrumentation.grpc import aio_client_interceptors

from pulse.client import ClientOptions, open_channel
from pulse.loadgen.actors import Actors
from pulse.loadgen.stats import Stats
from pulse.telemetry import Telemetry

__all__ = ["LoadConfig", "LoadGenerator"]


@dataclass(frozen=True)
class LoadConfig:
    client: ClientOptions = field(default_factory=ClientOptions)
    duration_s: float = 0.0  # 0: until stopped
    dashboards: int = 3
    agents: int = 2
    operators: int = 2
    sensors: int = 5
    watchers: int = 1
    unary_interval_s: float = 1.0
    ingest_batch: int = 20
    ingest_interval_s: float = 0.5
    seed: int | None = None
    summary_interval_s: float = 2.0


class LoadGenerator:
    def __init__(self, config: LoadConfig, telemetry: Telemetry | None = None) -> None:
        self.config = config
        self.telemetry = telemetry
        self.stats = Stats(telemetry)
        self.stop = asyncio.Event()

    async def run(self, out: TextIO = sys.stderr) -> Stats:
        c = self.config
        interceptors = (
            aio_client_interceptors(tracer_provider=self.telemetry.tracer_provider)
            if self.telemetry is not None
            else []
        )
        rng = random.Random(c.seed)
        async with open_channel(c.client, interceptors) as channel:
            actors = Actors(
                channel,
                c.client.metadata,
                self.stats,
                self.stop,
                rng,
                c.ingest_batch,
                c.ingest_interval_s,
            )
            sensor_ids = [f"sensor-{i + 1}" for i in range(c.sensors)]
            tasks = [
                *(
                    actors.forever(
                        _m("MetricsService/StreamMetrics"), "server_stream", actors.dashboard
                    )
                    for _ in range(c.dashboards)
                ),
                *(
                    actors.forever(_m("LogService/Ingest"), "client_stream", actors.agent)
                    for _ in range(c.agents)
                ),
                *(
                    actors.forever(_m("LogService/Monitor"), "bidi_stream", actors.operator)
                    for _ in range(c.operators)
                ),
                *(
                    actors.forever(
                        _m("SensorService/Record"), "client_stream", lambda s=s: actors.sensor(s)
                    )
                    for s in sensor_ids
                ),
                *(
                    actors.forever(
                        _m("SensorService/WatchSummaries"), "server_stream", actors.watcher
                    )
                    for _ in range(c.watchers)
                ),
            ]
            if sensor_ids:
                tasks.append(
                    actors.forever(
                        _m("SensorService/GetSummary"),
                        "unary",
                        lambda: actors.get_summary(sensor_ids),
                        pause_s=c.unary_interval_s,
                    )
                )
            tasks.append(
                actors.forever(
                    _m("MetricsService/ListMetricTypes"),
                    "unary",
                    actors.list_types,
                    pause_s=c.unary_interval_s * 5,
                )
            )
            running = [asyncio.create_task(t) for t in tasks]
            reporter = asyncio.create_task(self._report(out))
            if c.duration_s:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop.wait(), c.duration_s)
            else:
                await self.stop.wait()
            self.stop.set()
            await self._drain(running)
            reporter.cancel()
        print(f"\nloadgen done: {self.stats.line()}", file=out, flush=True)
        return self.stats

    @staticmethod
    async def _drain(tasks: list[asyncio.Task]) -> None:
        _, pending = await asyncio.wait(tasks, timeout=5)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def _report(self, out: TextIO) -> None:
        tty = out.isatty()
        while True:
            await asyncio.sleep(self.config.summary_interval_s)
            line = self.stats.line()
            print(f"\r{line}   " if tty else line, end="" if tty else "\n", file=out, flush=True)


def _m(short: str) -> str:
    return f"pulse.v1.{short}"
