"""Pulse's metric instruments, created once from a meter and passed to each component.

Record per batch or per cycle, never per entry: an ``add`` costs microseconds in Python.
"""

from __future__ import annotations

from dataclasses import dataclass

from opentelemetry.metrics import Counter, Histogram, Meter, UpDownCounter, _Gauge

from pulse.telemetry import conventions as c

__all__ = ["Instruments"]


@dataclass(frozen=True)
class Instruments:
    """Every instrument of docs/telemetry.md; build with ``Instruments.create(meter)``."""

    rpc_server_duration: Histogram
    rpc_client_duration: Histogram
    active_streams: UpDownCounter
    stream_messages_sent: Counter
    stream_messages_received: Counter
    metrics_schedule_lag: Histogram
    metrics_samples_skipped: Counter
    ingest_entries: Counter
    ingest_rate_limited: Counter
    ingest_modifications: Counter
    ingest_batches: Counter
    monitor_subscribers: UpDownCounter
    monitor_delivered: Counter
    monitor_dropped: Counter
    monitor_delivery_lag: Histogram
    monitor_filter_updates: Counter
    sensor_readings: Counter
    sensor_temperature: _Gauge
    sensor_watchers: UpDownCounter
    auth_failures: Counter
    faults_injected: Counter

    @classmethod
    def create(cls, meter: Meter) -> Instruments:
        return cls(
            rpc_server_duration=meter.create_histogram(
                c.RPC_SERVER_CALL_DURATION,
                unit="s",
                description="Duration of RPCs served, streams included (their lifetime).",
                explicit_bucket_boundaries_advisory=c.DURATION_BUCKETS_S,
            ),
            rpc_client_duration=meter.create_histogram(
                c.RPC_CLIENT_CALL_DURATION,
                unit="s",
                description="Duration of RPCs as seen by Pulse's clients.",
                explicit_bucket_boundaries_advisory=c.DURATION_BUCKETS_S,
            ),
            active_streams=meter.create_up_down_counter(
                "pulse.rpc.active_streams",
                unit="{stream}",
                description="Streaming RPCs in progress.",
            ),
            stream_messages_sent=meter.create_counter(
                "pulse.rpc.stream.messages.sent",
                unit="{message}",
                description="Messages the server wrote on streams.",
            ),
            stream_messages_received=meter.create_counter(
                "pulse.rpc.stream.messages.received",
                unit="{message}",
                description="Messages the server read from streams.",
            ),
            metrics_schedule_lag=meter.create_histogram(
                "pulse.metrics.schedule.lag",
                unit="s",
                description="How late StreamMetrics samples were sent against their schedule.",
                explicit_bucket_boundaries_advisory=c.LAG_BUCKETS_S,
            ),
            metrics_samples_skipped=meter.create_counter(
                "pulse.metrics.samples.skipped",
                unit="{sample}",
                description="Samples skipped because a stream fell a whole cycle behind.",
            ),
            ingest_entries=meter.create_counter(
                "pulse.ingest.entries",
                unit="{entry}",
                description="Log entries received by Ingest, by outcome.",
            ),
            ingest_rate_limited=meter.create_counter(
                "pulse.ingest.rate_limited",
                unit="{entry}",
                description="Entries dropped by a rate limit, by the limit's scope.",
            ),
            ingest_modifications=meter.create_counter(
                "pulse.ingest.modifications",
                unit="{entry}",
                description="Accepted entries changed on the way in (redacted, truncated).",
            ),
            ingest_batches=meter.create_counter(
                "pulse.ingest.batches",
                unit="{batch}",
                description="Ingest batches, by outcome.",
            ),
            monitor_subscribers=meter.create_up_down_counter(
                "pulse.monitor.subscribers",
                unit="{subscriber}",
                description="Monitor calls with a filter in place.",
            ),
            monitor_delivered=meter.create_counter(
                "pulse.monitor.entries.delivered",
                unit="{entry}",
                description="Entries written to Monitor subscribers.",
            ),
            monitor_dropped=meter.create_counter(
                "pulse.monitor.entries.dropped",
                unit="{entry}",
                description="Entries a slow Monitor subscriber lost (oldest first).",
            ),
            monitor_delivery_lag=meter.create_histogram(
                "pulse.monitor.delivery.lag",
                unit="s",
                description="Time from an entry's acceptance to its write to a subscriber.",
                explicit_bucket_boundaries_advisory=c.LAG_BUCKETS_S,
            ),
            monitor_filter_updates=meter.create_counter(
                "pulse.monitor.filter.updates",
                unit="{filter}",
                description="Filters received by Monitor, by outcome.",
            ),
            sensor_readings=meter.create_counter(
                "pulse.sensor.readings",
                unit="{reading}",
                description="Sensor readings received by Record, by outcome.",
            ),
            sensor_temperature=meter.create_gauge(
                "pulse.sensor.temperature",
                unit="Cel",
                description="Latest rolling summary per sensor (min, max, avg).",
            ),
            sensor_watchers=meter.create_up_down_counter(
                "pulse.sensor.watchers",
                unit="{watcher}",
                description="WatchSummaries calls in progress.",
            ),
            auth_failures=meter.create_counter(
                "pulse.auth.failures",
                unit="{call}",
                description="Calls refused as UNAUTHENTICATED, by reason.",
            ),
            faults_injected=meter.create_counter(
                "pulse.faults.injected",
                unit="{call}",
                description="Calls that received an injected fault.",
            ),
        )
