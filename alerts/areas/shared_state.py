"""The engines several replicas share: the log bus (NATS JetStream) refusing or timing out
publishes, a replica falling behind the stream, the sensor database failing or slowing calls.
Only a Pulse with `bus.url` or `sensors.database_url` emits these series; for one process on
its embedded state the alerts stay silent.
"""

from __future__ import annotations

from alerts.config import DASHBOARDS, Config
from alerts.model import Alert, Group, RuleFile, pct

__all__ = ["FILE", "rule_file"]

FILE = "pulse-shared-state.yaml"
PUBLISH = 'messaging_operation_name="publish"'
# Migrations run once at start-up under a lock that waits for the other replicas.
CALLS = 'db_operation_name!="MIGRATE"'


def _failed_share(metric: str, pulse: str, calls: str) -> str:
    """Share of `metric`'s calls over 10 minutes that failed (they carry `error_type`)."""
    return (
        f'sum by (job) (rate({metric}{{{pulse}, {calls}, error_type!=""}}[10m]))\n'
        f"/\n"
        f"sum by (job) (rate({metric}{{{pulse}, {calls}}}[10m]))"
    )


def _bus_publish_errors(config: Config) -> Alert:
    limit = config.thresholds.bus_publish_error_ratio
    share = _failed_share(
        "messaging_client_operation_duration_seconds_count", config.selectors.pulse, PUBLISH
    )
    return Alert(
        name="PulseBusPublishErrors",
        expr=f"{share}\n> {limit:g}",
        for_="5m",
        severity="warning",
        service="pulse",
        summary="The log bus refuses or drops Pulse's batches.",
        description=(
            "{{ $value | humanizePercentage }} of the batches Pulse published to NATS JetStream "
            f"over the last 10 minutes failed (more than {pct(limit)} allowed); their Ingest "
            "calls ended with UNAVAILABLE and agents retry them."
        ),
        dashboard=DASHBOARDS["shared"],
    )


def _bus_consumer_lagging(config: Config) -> Alert:
    limit = config.thresholds.bus_consumer_pending_batches
    return Alert(
        name="PulseBusConsumerLagging",
        expr=(
            f"max by (job, instance) (pulse_bus_consumer_pending{{{config.selectors.pulse}}})"
            f" > {limit}"
        ),
        for_="10m",
        severity="warning",
        service="pulse",
        summary="Pulse instance {{ $labels.instance }} reads the log bus late.",
        description=(
            "{{ $labels.instance }} has had {{ $value }} stored batches it has not read for 10 "
            f"minutes (more than {limit} allowed): its Monitor subscribers see entries late."
        ),
        dashboard=DASHBOARDS["shared"],
    )


def _database_errors(config: Config) -> Alert:
    limit = config.thresholds.database_error_ratio
    share = _failed_share(
        "db_client_operation_duration_seconds_count", config.selectors.pulse, CALLS
    )
    return Alert(
        name="PulseDatabaseErrors",
        expr=f"{share}\n> {limit:g}",
        for_="5m",
        severity="warning",
        service="pulse",
        summary="The sensor database fails Pulse's calls.",
        description=(
            "{{ $value | humanizePercentage }} of Pulse's calls to PostgreSQL over the last 10 "
            f"minutes failed (more than {pct(limit)} allowed); Record, GetSummary and "
            "WatchSummaries answered UNAVAILABLE."
        ),
        dashboard=DASHBOARDS["shared"],
    )


def _database_slow(config: Config) -> Alert:
    limit = config.thresholds.database_p99_s
    buckets = (
        "sum by (job, le) (rate(db_client_operation_duration_seconds_bucket"
        f"{{{config.selectors.pulse}, {CALLS}}}[10m]))"
    )
    return Alert(
        name="PulseDatabaseSlow",
        expr=f"histogram_quantile(0.99, {buckets})\n> {limit:g}",
        for_="10m",
        severity="warning",
        service="pulse",
        summary="The sensor database answers Pulse slowly.",
        description=(
            "99% of Pulse's calls to PostgreSQL took up to {{ $value | humanizeDuration }} over "
            f"the last 10 minutes (more than {limit:g} s allowed); every reading waits for one."
        ),
        dashboard=DASHBOARDS["shared"],
    )


def rule_file(config: Config) -> RuleFile:
    alerts = (
        _bus_publish_errors(config),
        _bus_consumer_lagging(config),
        _database_errors(config),
        _database_slow(config),
    )
    return RuleFile(FILE, __doc__, (Group("pulse-shared-state", alerts),))
