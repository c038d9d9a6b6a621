"""The telemetry pipeline: Pulse -> OpenTelemetry Collector -> Jaeger, Prometheus and the logs
backend. When it breaks, on-call is blind. The collector's own metrics carry no _total suffix.
One branch per signal, labelled data_type: rate() over several metric names at once would
collide on labels. Exporter alerts carry a backend label (the exporter name after the slash) so
that an outage of that backend inhibits them.
"""

from __future__ import annotations

from alerts.config import DASHBOARDS, Config
from alerts.model import Alert, Group, RuleFile

__all__ = ["FILE", "SIGNALS", "rule_file"]

FILE = "pipeline.yaml"
# The suffix of the collector's per-signal metrics, and the data_type it stands for.
SIGNALS = (("spans", "traces"), ("metric_points", "metrics"), ("log_records", "logs"))
PIPELINE = DASHBOARDS["pipeline"]


def _per_signal(metric: str, by: str, collector: str, *, backend: bool) -> str:
    """`sum by (by) (rate(...)) > 0` for each signal, labelled with its data_type (and the
    backend its exporter feeds), joined by `or`."""
    branches = []
    for suffix, data_type in SIGNALS:
        rate = f"sum by ({by}) (rate({metric}_{suffix}{{{collector}}}[5m])) > 0"
        labelled = f'label_replace({rate}, "data_type", "{data_type}", "", "")'
        if backend:
            labelled = (
                f'label_replace(\n  {labelled},\n  "backend", "$1", "exporter", "[^/]+/(.+)"\n)'
            )
        branches.append(labelled)
    return "\nor\n".join(branches)


def _telemetry_absent(config: Config) -> Alert:
    window = config.thresholds.telemetry_absent_window
    return Alert(
        name="PulseTelemetryAbsent",
        expr=f"absent_over_time(process_memory_usage_bytes{{{config.selectors.pulse}}}[{window}])",
        for_="5m",
        severity="critical",
        service="pulse",
        summary="No telemetry from Pulse has reached Prometheus for 10 minutes.",
        description=(
            'Prometheus has received no metric from job="{{ $labels.job }}" for 10 minutes. '
            "Either every Pulse instance is down or the path Pulse -> collector -> Prometheus is "
            "broken; either way nothing else about Pulse can alert."
        ),
        dashboard=PIPELINE,
    )


def _collector_down(config: Config) -> Alert:
    return Alert(
        name="OtelcolDown",
        expr=f"up{{{config.selectors.collector}}} == 0",
        for_="2m",
        severity="critical",
        service="otelcol",
        summary="The OpenTelemetry Collector {{ $labels.instance }} is down.",
        description=(
            "Prometheus cannot scrape the collector at {{ $labels.instance }}. Pulse's traces, "
            "metrics and logs are not being delivered; Pulse buffers a little, then drops."
        ),
        dashboard=PIPELINE,
    )


def _send_failed(config: Config) -> Alert:
    return Alert(
        name="OtelcolExporterSendFailed",
        expr=_per_signal(
            "otelcol_exporter_send_failed",
            "job, instance, exporter",
            config.selectors.collector,
            backend=True,
        ),
        for_="10m",
        severity="warning",
        service="otelcol",
        summary="Collector exporter {{ $labels.exporter }} fails to send.",
        description=(
            "{{ $labels.exporter }} on {{ $labels.instance }} failed to send "
            "{{ $value | humanize }} items per second over the last 5 minutes after its retries. "
            "Those items are lost."
        ),
        dashboard=PIPELINE,
    )


def _enqueue_failed(config: Config) -> Alert:
    return Alert(
        name="OtelcolExporterEnqueueFailed",
        expr=_per_signal(
            "otelcol_exporter_enqueue_failed",
            "job, instance, exporter",
            config.selectors.collector,
            backend=True,
        ),
        for_="5m",
        severity="warning",
        service="otelcol",
        summary="Collector exporter {{ $labels.exporter }} drops data because its queue is full.",
        description=(
            "{{ $labels.exporter }} on {{ $labels.instance }} could not queue "
            "{{ $value | humanize }} items per second over the last 5 minutes. They are dropped."
        ),
        dashboard=PIPELINE,
    )


def _queue_nearly_full(config: Config) -> Alert:
    collector, limit = config.selectors.collector, config.thresholds.exporter_queue_ratio
    return Alert(
        name="OtelcolExporterQueueNearlyFull",
        expr=(
            "label_replace(\n"
            "  max by (job, instance, exporter, data_type) (\n"
            f"    otelcol_exporter_queue_size{{{collector}}}"
            f" / otelcol_exporter_queue_capacity{{{collector}}}\n"
            f"  ) > {limit:g},\n"
            '  "backend", "$1", "exporter", "[^/]+/(.+)"\n'
            ")"
        ),
        for_="5m",
        severity="warning",
        service="otelcol",
        summary=(
            "Collector exporter {{ $labels.exporter }} queue is {{ $value | humanizePercentage }} "
            "full."
        ),
        description=(
            "The {{ $labels.data_type }} queue of {{ $labels.exporter }} on "
            f"{{{{ $labels.instance }}}} has been above {limit * 100:g}% of its capacity for 5 "
            "minutes: the backend is slow or away. When it is full, new data is dropped."
        ),
        dashboard=PIPELINE,
    )


def _receiver_refused(config: Config) -> Alert:
    return Alert(
        name="OtelcolReceiverRefused",
        expr=_per_signal(
            "otelcol_receiver_refused",
            "job, instance, receiver",
            config.selectors.collector,
            backend=False,
        ),
        for_="5m",
        severity="warning",
        service="otelcol",
        summary="Collector receiver {{ $labels.receiver }} refuses data.",
        description=(
            "{{ $labels.receiver }} on {{ $labels.instance }} refused {{ $value | humanize }} "
            "items per second over the last 5 minutes; senders retry or drop them."
        ),
        dashboard=PIPELINE,
    )


def _memory_limiter(config: Config) -> Alert:
    return Alert(
        name="OtelcolMemoryLimiterRefusing",
        expr=_per_signal(
            "otelcol_processor_memory_limiter_refused",
            "job, instance",
            config.selectors.collector,
            backend=False,
        ),
        for_="5m",
        severity="warning",
        service="otelcol",
        summary="The collector {{ $labels.instance }} refuses data to stay under its memory limit.",
        description=(
            "The memory limiter on {{ $labels.instance }} refused {{ $value | humanize }} items "
            "per second over the last 5 minutes: the collector holds more than it can send."
        ),
        dashboard=PIPELINE,
    )


def _target_down(config: Config) -> Alert:
    # The collector and the logs and trace backends have down alerts of their own.
    return Alert(
        name="TargetDown",
        expr=(
            f'label_replace(up{{{config.selectors.own_down_alerts}}} == 0, "service", "$1", '
            '"job", "(.*)")'
        ),
        for_="5m",
        severity="warning",
        summary="Prometheus cannot scrape {{ $labels.job }} at {{ $labels.instance }}.",
        description=(
            "The scrape target {{ $labels.instance }} of job {{ $labels.job }} has been down for "
            "5 minutes; its metrics, and the alerts built on them, are missing."
        ),
        dashboard=PIPELINE,
    )


def rule_file(config: Config) -> RuleFile:
    alerts = (
        _telemetry_absent(config),
        _collector_down(config),
        _send_failed(config),
        _enqueue_failed(config),
        _queue_nearly_full(config),
        _receiver_refused(config),
        _memory_limiter(config),
        _target_down(config),
    )
    return RuleFile(FILE, __doc__, (Group("telemetry-pipeline", alerts),))
