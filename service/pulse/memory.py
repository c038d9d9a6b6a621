"""The worst-case memory of one Pulse process, computed from its settings.

Everything a client can make Pulse keep is bounded by bytes; this adds those bounds up, with
the process itself and the requests that can be in flight at once. README.md states the total
for the default settings, and tests hold it against the chart's memory limit and a running
server's RSS under abuse (tests/abuse).
"""

from __future__ import annotations

from pulse.config import Settings
from pulse.log_service.forwarding import MAX_EXPORT_BYTES
from pulse.log_service.jetstream import CONSUMER_PENDING_BYTES
from pulse.telemetry.providers import MAX_LOG_QUEUE, MAX_QUEUE

__all__ = ["BASELINE_BYTES", "memory_bound"]

MiB = 1024 * 1024
# An idle `pulse serve` with telemetry on: 78 MiB RSS measured (Python, grpcio, protobuf,
# the OpenTelemetry SDK, aiohttp, SQLite), plus room for their caches under load.
BASELINE_BYTES = 88 * MiB
# A span in the export queue: attributes of bounded size and the SDK's objects.
SPAN_BYTES = 2048
# One of Pulse's own log records in the SDK's export queue: a line with its bounded extras.
OWN_LOG_RECORD_BYTES = 2048


def memory_bound(settings: Settings) -> dict[str, int]:
    """Bytes per part of the worst case; the total is the sum."""
    g, i, m, s = settings.grpc, settings.ingest, settings.monitor, settings.sensors
    reading_calls = i.max_streams + s.max_record_streams + m.max_subscribers
    bus = {}
    if settings.bus.url is not None:
        bus = {
            "log bus, batches being published: ingest.max_streams x grpc.max_message_bytes": (
                i.max_streams * g.max_message_bytes
            ),
            "log bus, batches read and not yet handed over": CONSUMER_PENDING_BYTES,
        }
    return {
        "process (interpreter, libraries, SQLite)": BASELINE_BYTES,
        "log ring buffer: monitor.buffer_bytes": m.buffer_bytes,
        "Monitor queues: monitor.max_subscribers x subscriber_queue_bytes": m.max_subscribers
        * m.subscriber_queue_bytes,
        "Monitor responses being written: monitor.max_subscribers x max_response_bytes": (
            m.max_subscribers * m.max_response_bytes
        ),
        "batch ids: ingest.dedup_max_bytes": i.dedup_max_bytes,
        "rate-limit keys: 2 x ingest.max_tracked_key_bytes": 2 * i.max_tracked_key_bytes,
        "entries awaiting forwarding: ingest.forward_queue_bytes": i.forward_queue_bytes,
        "an export being sent to the logs backend: its entries and their encoding": 2
        * MAX_EXPORT_BYTES,
        "Pulse's own log records awaiting export": MAX_LOG_QUEUE * OWN_LOG_RECORD_BYTES,
        "spans awaiting export": MAX_QUEUE * SPAN_BYTES,
        "requests being read: (ingest.max_streams + sensors.max_record_streams + "
        "monitor.max_subscribers) x grpc.max_message_bytes": reading_calls * g.max_message_bytes,
        **bus,
    }
