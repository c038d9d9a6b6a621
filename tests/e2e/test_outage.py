"""Outage without loss: the logs backend (VictoriaLogs) stops for 20 s and the collector restarts
during the outage; every entry ingested meanwhile reaches it afterwards, none is dropped, Pulse
keeps answering, and its memory stays bounded."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import psutil
import pytest
from conftest import LivePulse, eventually, logsql, rows_dropped
from stack import Stack

from pulse.v1 import logs_pb2, logs_pb2_grpc

pytestmark = pytest.mark.e2e

OUTAGE_S = 20.0


async def _ingest_markers(address: str, run: str, stop: asyncio.Event) -> tuple[set[str], int]:
    """Send one uniquely marked entry every 0.25 s until stopped; return markers and errors."""
    sent: set[str] = set()
    errors = 0
    async with grpc.aio.insecure_channel(address) as channel:
        stub = logs_pb2_grpc.LogServiceStub(channel)
        i = 0
        while not stop.is_set():
            marker = f"{run}-{i:05d}"
            request = logs_pb2.IngestRequest(
                batch_id=marker,
                entries=[logs_pb2.LogEntry(source="outage-test", message=f"marker {marker}")],
            )
            try:
                reply = await stub.Ingest(iter([request]), timeout=5)
                if reply.accepted == 1:
                    sent.add(marker)
            except grpc.aio.AioRpcError:
                errors += 1
            i += 1
            await asyncio.sleep(0.25)
    return sent, errors


def test_backend_outage_and_collector_restart_lose_nothing(
    stack: Stack, pulse_live: LivePulse
) -> None:
    run = f"outage-{uuid.uuid4().hex[:8]}"
    pulse = psutil.Process(pulse_live.server.pid)

    async def scenario() -> tuple[set[str], int, list[int]]:
        stop = asyncio.Event()
        sender = asyncio.create_task(_ingest_markers(pulse_live.grpc_address, run, stop))
        rss = [pulse.memory_info().rss]
        await asyncio.sleep(2)
        await asyncio.to_thread(stack.stop, "victorialogs")
        await asyncio.sleep(OUTAGE_S / 2)
        rss.append(pulse.memory_info().rss)
        # The collector restarts while its backend is down: the disk queue must survive it.
        await asyncio.to_thread(stack.restart, "otelcol")
        await asyncio.sleep(OUTAGE_S / 2)
        rss.append(pulse.memory_info().rss)
        await asyncio.to_thread(stack.start, "victorialogs")
        await asyncio.to_thread(stack.wait_ready, "victorialogs")
        await asyncio.sleep(2)
        stop.set()
        sent, errors = await sender
        rss.append(pulse.memory_info().rss)
        return sent, errors, rss

    sent, errors, rss = asyncio.run(scenario())
    assert errors == 0, "Pulse answered every call while its telemetry backend was down"
    assert len(sent) > OUTAGE_S * 2

    def delivered() -> set[str] | None:
        found: set[str] = set()
        for record in logsql(stack, f'{{service.name="pulse"}} "{run}"', since_s=900, limit=5000):
            found.update(word for word in record["_msg"].split() if word.startswith(run))
        return found if sent <= found else None

    eventually(
        delivered,
        f"all {len(sent)} markers in VictoriaLogs after the outage",
        timeout_s=180,
        every_s=5,
    )
    assert set(rows_dropped(stack).values()) == {0.0}
    # Bounded: the queues of the SDK are capped, so memory does not track the outage.
    assert max(rss) - rss[0] < 150 * 2**20, [r // 2**20 for r in rss]
