"""Benchmarks of the shared log bus: Ingest through NATS JetStream against a bare nats-py
publish of the same batches, and Monitor delivery lag across two replicas against one
embedded process. The engines run on loopback (deploy/local/engines.py) in a directory of
their own; PULSE_STACK_PORT_OFFSET moves their ports (default: the tests' offset)."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import nats
from nats.js.api import StorageType, StreamConfig

from pulse.v1 import logs_pb2, logs_pb2_grpc

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "deploy" / "local"))
from engines import Engines

__all__ = ["bare_publish_rate", "delivery_lags", "engines"]

LAG_BATCHES_PER_S = 100
LAG_SECONDS = 5.0
TESTS_OFFSET = "11000"


def engines(tmp: Path) -> Engines:
    env = dict(os.environ)
    env.setdefault("PULSE_STACK_PORT_OFFSET", TESTS_OFFSET)
    running = Engines(tmp / "engines", env)
    running.up(progress=lambda line: print(f"  {line}", flush=True))
    return running


def stop(running: Engines) -> None:
    running.down()
    shutil.rmtree(running.postgresql_dir(), ignore_errors=True)


def bus_env(running: Engines, stream: str) -> dict[str, str]:
    return {
        "PULSE_BUS_URL": running.nats_url,
        "PULSE_BUS_STREAM": stream,
        "PULSE_BUS_SUBJECT": f"pulse.{stream}",
        "PULSE_BUS_MAX_BYTES": str(256 * 1024 * 1024),
    }


async def bare_publish_rate(
    running: Engines, batches: list[logs_pb2.IngestRequest], seconds: float
) -> float:
    """Entries per second of nats-py publishing the same batches, encoded once, to a stream
    configured as Pulse's, each acknowledged before the next (as Ingest waits for each). The
    batches carry no batch id, so neither side asks JetStream to deduplicate."""
    payloads = [batch.SerializeToString() for batch in batches]
    entries = len(batches[0].entries)
    nc = await nats.connect(running.nats_url)
    try:
        js = nc.jetstream()
        await js.add_stream(
            StreamConfig(
                name="BENCH_BARE",
                subjects=["bench.bare"],
                storage=StorageType.FILE,
                max_bytes=256 * 1024 * 1024,
                duplicate_window=300,
            )
        )
        sent, i = 0, 0
        started = time.perf_counter()
        end = started + seconds
        while time.perf_counter() < end:
            await js.publish("bench.bare", payloads[i % len(payloads)])
            sent += entries
            i += 1
        elapsed = time.perf_counter() - started
        await js.delete_stream("BENCH_BARE")
    finally:
        await nc.close()
    return sent / elapsed


async def delivery_lags(ingest_port: int, monitor_port: int) -> list[float]:
    """Seconds from Ingest's send to Monitor's receipt of LAG_BATCHES_PER_S one-entry batches a
    second for LAG_SECONDS, ingested on one port and watched on another."""
    lags: list[float] = []
    stop = asyncio.Event()
    async with (
        grpc.aio.insecure_channel(f"127.0.0.1:{ingest_port}") as ingest_channel,
        grpc.aio.insecure_channel(f"127.0.0.1:{monitor_port}") as monitor_channel,
    ):
        monitor_stub = logs_pb2_grpc.LogServiceStub(monitor_channel)

        async def one_filter() -> AsyncIterator[logs_pb2.LogFilter]:
            yield logs_pb2.LogFilter(sources=["lag"])
            await stop.wait()

        async def watch() -> None:
            async for response in monitor_stub.Monitor(one_filter()):
                now = time.time()
                lags.extend(now - float(entry.message) for entry in response.entries)

        watcher = asyncio.create_task(watch())
        await asyncio.sleep(1.0)

        async def requests() -> AsyncIterator[logs_pb2.IngestRequest]:
            total = int(LAG_BATCHES_PER_S * LAG_SECONDS)
            start = time.monotonic()
            for i in range(total):
                await asyncio.sleep(max(0.0, start + i / LAG_BATCHES_PER_S - time.monotonic()))
                entry = logs_pb2.LogEntry(source="lag", severity=9, message=repr(time.time()))
                yield logs_pb2.IngestRequest(batch_id=f"lag-{i}", entries=[entry])

        await logs_pb2_grpc.LogServiceStub(ingest_channel).Ingest(requests())
        await asyncio.sleep(1.0)
        stop.set()
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
    return lags
