"""What Pulse's users notice before any budget burns: entries lost to slow Monitor subscribers,
agents throttled or turned away, accepted entries that never reach the logs backend,
StreamMetrics falling behind, sensor readings refused, and the process running out of room.
Ratios, not counts, so the thresholds hold at any load.
"""

from __future__ import annotations

from alerts.config import DASHBOARDS, PULSE_MEMORY_KEY, Config
from alerts.model import Alert, Group, RuleFile, pct

__all__ = ["FILE", "rule_file"]

FILE = "pulse-symptoms.yaml"


def _share(metric: str, pulse: str, bad: str) -> str:
    """Share of `metric`'s events over 10 minutes whose labels match `bad`."""
    return (
        f"sum by (job) (rate({metric}{{{pulse}, {bad}}}[10m]))\n"
        f"/\n"
        f"sum by (job) (rate({metric}{{{pulse}}}[10m]))"
    )


def _entries_dropped(config: Config) -> Alert:
    pulse, limit = config.selectors.pulse, config.thresholds.monitor_dropped_ratio
    dropped = f"sum by (job) (rate(pulse_monitor_entries_dropped_total{{{pulse}}}[10m]))"
    delivered = f"sum by (job) (rate(pulse_monitor_entries_delivered_total{{{pulse}}}[10m]))"
    return Alert(
        name="PulseMonitorEntriesDropped",
        expr=f"{dropped}\n/\n(\n  {delivered}\n  +\n  {dropped}\n)\n> {limit:g}",
        for_="10m",
        severity="warning",
        service="pulse",
        summary="Monitor subscribers are losing log entries.",
        description=(
            "{{ $value | humanizePercentage }} of the entries matched by Monitor filters were "
            "dropped over the last 10 minutes because subscribers read slower than entries arrive "
            f"(more than {pct(limit)} allowed)."
        ),
        dashboard=DASHBOARDS["streams"],
    )


def _rate_limited(config: Config) -> Alert:
    limit = config.thresholds.ingest_rate_limited_ratio
    bad = 'pulse_ingest_outcome="rate_limited"'
    return Alert(
        name="PulseIngestRateLimited",
        expr=f"{_share('pulse_ingest_entries_total', config.selectors.pulse, bad)}\n> {limit:g}",
        for_="15m",
        severity="warning",
        service="pulse",
        summary="Pulse is rate-limiting a large share of ingested log entries.",
        description=(
            "{{ $value | humanizePercentage }} of the entries agents sent over the last 10 minutes "
            f"were refused by the rate limits (more than {pct(limit)} allowed). Agents retry, so "
            "their backlogs grow."
        ),
        dashboard=DASHBOARDS["logs"],
    )


def _ingest_rejected(config: Config) -> Alert:
    limit = config.thresholds.ingest_rejected_ratio
    bad = 'pulse_ingest_outcome="rejected"'
    return Alert(
        name="PulseIngestRejected",
        expr=f"{_share('pulse_ingest_entries_total', config.selectors.pulse, bad)}\n> {limit:g}",
        for_="15m",
        severity="warning",
        service="pulse",
        summary="Pulse rejects a large share of ingested log entries as invalid.",
        description=(
            "{{ $value | humanizePercentage }} of the entries agents sent over the last 10 minutes "
            f"were rejected as invalid (more than {pct(limit)} allowed). Those entries are lost."
        ),
        dashboard=DASHBOARDS["logs"],
    )


def _streams_lagging(config: Config) -> Alert:
    pulse, limit = config.selectors.pulse, config.thresholds.metrics_skipped_ratio
    skipped = f"sum by (job) (rate(pulse_metrics_samples_skipped_total{{{pulse}}}[10m]))"
    sent = (
        "sum by (job) (rate(pulse_rpc_stream_messages_sent_total"
        f'{{{pulse}, rpc_method="pulse.v1.MetricsService/StreamMetrics"}}[10m]))'
    )
    return Alert(
        name="PulseMetricsStreamsLagging",
        expr=f"{skipped}\n/\n(\n  {skipped}\n  +\n  {sent}\n)\n> {limit:g}",
        for_="10m",
        severity="warning",
        service="pulse",
        summary="StreamMetrics streams are skipping samples to keep up.",
        description=(
            "{{ $value | humanizePercentage }} of the scheduled StreamMetrics samples were skipped "
            "over the last 10 minutes because the streams fell a whole interval behind (more than "
            f"{pct(limit)} allowed)."
        ),
        dashboard=DASHBOARDS["streams"],
    )


def _readings_rejected(config: Config) -> Alert:
    limit = config.thresholds.sensor_rejected_ratio
    bad = 'pulse_sensor_outcome="rejected"'
    return Alert(
        name="PulseSensorReadingsRejected",
        expr=f"{_share('pulse_sensor_readings_total', config.selectors.pulse, bad)}\n> {limit:g}",
        for_="15m",
        severity="warning",
        service="pulse",
        summary="Pulse rejects a large share of sensor readings.",
        description=(
            "{{ $value | humanizePercentage }} of the sensor readings over the last 10 minutes "
            f"were rejected as invalid (more than {pct(limit)} allowed); the summaries miss them."
        ),
        dashboard=DASHBOARDS["sensors"],
    )


def _forwarding_lost(config: Config) -> Alert:
    limit = config.thresholds.forward_lost_ratio
    bad = 'pulse_log_forward_outcome!="forwarded"'
    share = _share("pulse_log_forward_entries_total", config.selectors.pulse, bad)
    return Alert(
        name="PulseLogForwardingLost",
        expr=f"{share}\n> {limit:g}",
        for_="10m",
        severity="warning",
        service="pulse",
        summary="Accepted log entries are not reaching the logs backend.",
        description=(
            "{{ $value | humanizePercentage }} of the entries Pulse accepted over the last 10 "
            "minutes were given up by its forwarder (queue full, export failed or rejected by the "
            f"receiver; more than {pct(limit)} allowed). They are missing from the logs backend."
        ),
        dashboard=DASHBOARDS["logs"],
    )


def _memory_high(config: Config) -> Alert:
    thresholds = config.thresholds
    limit_mib = thresholds.limits.pulse_memory_bytes / 2**20
    return Alert(
        name="PulseMemoryHigh",
        expr=(
            f"max by (job, instance) (process_memory_usage_bytes{{{config.selectors.pulse}}})"
            f" > {thresholds.pulse_memory_high_bytes}"
        ),
        for_="15m",
        severity="warning",
        service="pulse",
        summary=(
            "Pulse instance {{ $labels.instance }} uses more than "
            f"{pct(thresholds.memory_fraction)} of its memory limit."
        ),
        description=(
            "{{ $labels.instance }} has used {{ $value | humanize1024 }}B of memory for 15 "
            f"minutes; the chart limits Pulse to {limit_mib:g} MiB ({PULSE_MEMORY_KEY}). Near the "
            "limit the kernel kills the process and every stream on it ends."
        ),
        dashboard=DASHBOARDS["overview"],
    )


def _faults_injected(config: Config) -> Alert:
    return Alert(
        name="PulseFaultsInjected",
        expr=(
            "sum by (job, rpc_method) (rate(pulse_faults_injected_total"
            f"{{{config.selectors.pulse}}}[5m])) > 0"
        ),
        for_="1m",
        severity="info",
        service="pulse",
        summary="Fault injection is active on {{ $labels.rpc_method }}.",
        description=(
            "Pulse injected {{ $value | humanize }} faults per second into "
            "{{ $labels.rpc_method }} over the last 5 minutes. Errors and latency on this method "
            "may be deliberate; check the admin port's /faults before debugging."
        ),
        dashboard=DASHBOARDS["overview"],
    )


def _auth_failures(config: Config) -> Alert:
    limit = config.thresholds.auth_failures_per_s
    return Alert(
        name="PulseAuthFailures",
        expr=(
            "sum by (job, pulse_auth_reason) (rate(pulse_auth_failures_total"
            f"{{{config.selectors.pulse}}}[5m])) > {limit:g}"
        ),
        for_="10m",
        severity="info",
        service="pulse",
        summary="Clients keep failing to authenticate to Pulse.",
        description=(
            "{{ $value | humanize }} calls per second were refused with reason "
            "{{ $labels.pulse_auth_reason }} over the last 5 minutes; a client with a missing or "
            "rotated credential, or someone probing."
        ),
        dashboard=DASHBOARDS["overview"],
    )


def rule_file(config: Config) -> RuleFile:
    alerts = (
        _entries_dropped(config),
        _rate_limited(config),
        _ingest_rejected(config),
        _streams_lagging(config),
        _readings_rejected(config),
        _forwarding_lost(config),
        _memory_high(config),
        _faults_injected(config),
        _auth_failures(config),
    )
    return RuleFile(FILE, __doc__, (Group("pulse-symptoms", alerts),))
