"""Pulse / Shared state: the engines several replicas share. The log bus (NATS JetStream):
batches published by outcome and how long JetStream took to store them, and how far each
replica's reader is behind. The sensor database (PostgreSQL): calls by outcome, their latency
and failures. A Pulse on its embedded state records none of these."""

from __future__ import annotations

from grafana_foundation_sdk.models import dashboard as model

from alerts.areas.shared_state import CALLS, PUBLISH
from alerts.config import DASHBOARDS, Config
from dashboards import variables
from dashboards.common import Row, assemble, prom, timeseries
from dashboards.queries import PULSE, RATE, ZERO, quantiles

__all__ = ["dashboard"]

UID = DASHBOARDS["shared"]
BUS = "messaging_client_operation_duration_seconds"
DB = "db_client_operation_duration_seconds"


def _failed(metric: str, calls: str) -> str:
    failed = f'sum(rate({metric}_count{{{PULSE}, {calls}, error_type!=""}}{RATE})){ZERO}'
    return f"({failed}) / sum(rate({metric}_count{{{PULSE}, {calls}}}{RATE}))"


def _bus(config: Config) -> Row:
    t = config.thresholds
    return Row(
        "Log bus (NATS JetStream)",
        [
            timeseries(
                "Batches published by outcome",
                "Applied batches per second that Ingest published, by the error that failed "
                "them (none: stored).",
                [
                    prom(
                        f"sum by (error_type) (rate({BUS}_count{{{PULSE}, {PUBLISH}}}{RATE}))",
                        "{{error_type}}",
                    )
                ],
                "cps",
            ),
            timeseries(
                "Failed publishes",
                "Share of publishes that failed; PulseBusPublishErrors fires above "
                f"{t.bus_publish_error_ratio * 100:g}%.",
                [prom(_failed(BUS, PUBLISH), "failed")],
                "percentunit",
                thresholds=((t.bus_publish_error_ratio, "red"),),
            ),
            timeseries(
                "Publish latency",
                "Until JetStream stored the batch and this replica read it back: what each "
                "batch of an Ingest call waits for.",
                quantiles(BUS, f"{PULSE}, {PUBLISH}"),
                "s",
            ),
            timeseries(
                "Consumer lag",
                "Batches stored in the stream that each replica has not read yet; "
                f"PulseBusConsumerLagging fires above {t.bus_consumer_pending_batches}.",
                [
                    prom(
                        f"max by (instance) (pulse_bus_consumer_pending{{{PULSE}}})",
                        "{{instance}}",
                    )
                ],
                "short",
                thresholds=((t.bus_consumer_pending_batches, "red"),),
            ),
        ],
    )


def _database(config: Config) -> Row:
    t = config.thresholds
    return Row(
        "Sensor database (PostgreSQL)",
        [
            timeseries(
                "Calls by collection and outcome",
                "Calls per second: a reading (pulse_record_reading), a summary read "
                "(sensor_summaries), by the error that failed them (none: answered).",
                [
                    prom(
                        f"sum by (db_collection_name, error_type) "
                        f"(rate({DB}_count{{{PULSE}, {CALLS}}}{RATE}))",
                        "{{db_collection_name}} {{error_type}}",
                    )
                ],
                "cps",
            ),
            timeseries(
                "Failed calls",
                "Share of calls that failed; PulseDatabaseErrors fires above "
                f"{t.database_error_ratio * 100:g}%.",
                [prom(_failed(DB, CALLS), "failed")],
                "percentunit",
                thresholds=((t.database_error_ratio, "red"),),
            ),
            timeseries(
                "Call latency",
                f"p50, p95, p99 of the database's calls; PulseDatabaseSlow fires when p99 stays "
                f"above {t.database_p99_s:g} s.",
                quantiles(DB, f"{PULSE}, {CALLS}"),
                "s",
                thresholds=((t.database_p99_s, "red"),),
            ),
        ],
    )


def dashboard(config: Config) -> model.Dashboard:
    return assemble(
        UID,
        "The engines several replicas share: the log bus and the sensor database.",
        [_bus(config), _database(config)],
        [variables.prometheus(), variables.instance()],
        (
            "PulseBusPublishErrors",
            "PulseBusConsumerLagging",
            "PulseDatabaseErrors",
            "PulseDatabaseSlow",
        ),
    )
