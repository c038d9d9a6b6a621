"""Pulse / Telemetry pipeline: the path of Pulse's telemetry. Collector in and out, queues, the
health of Prometheus, the logs backend, Jaeger and Alertmanager, and the failures that keep
alerts from arriving."""

from __future__ import annotations

from grafana_foundation_sdk.models import dashboard as model

from alerts.areas.pipeline import SIGNALS
from alerts.config import DASHBOARDS, Config
from dashboards import variables
from dashboards.common import Query, Row, assemble, prom, stat, timeseries
from dashboards.queries import RATE, ZERO

__all__ = ["dashboard"]

UID = DASHBOARDS["pipeline"]
UP_DOWN = model.ValueMap(
    options={
        "0": model.ValueMappingResult(text="DOWN", color="red", index=0),
        "1": model.ValueMappingResult(text="UP", color="green", index=1),
    }
)


def _per_signal(config: Config, metric: str, by: str = "", fallback: bool = False) -> list[Query]:
    group = f"sum by ({by})" if by else "sum"
    legend = f"{{{{{by}}}}} " if by else ""
    zero = ZERO if fallback else ""
    collector = config.selectors.collector
    return [
        prom(
            f"{group} (rate(otelcol_{metric}_{suffix}{{{collector}}}{RATE})){zero}",
            f"{legend}{signal}",
        )
        for suffix, signal in SIGNALS
    ]


def _collector(config: Config) -> Row:
    collector = config.selectors.collector
    queue = config.thresholds.exporter_queue_ratio
    enqueue_failed = [
        prom(
            f"sum (rate(otelcol_exporter_enqueue_failed_{suffix}{{{collector}}}{RATE})){ZERO}",
            f"enqueue failed {signal}",
        )
        for suffix, signal in SIGNALS
    ]
    return Row(
        "Collector",
        [
            timeseries(
                "Accepted by the receiver",
                "Items per second the collector's OTLP receiver accepted, per signal.",
                _per_signal(config, "receiver_accepted"),
                "cps",
            ),
            timeseries(
                "Refused by the receiver",
                "Items per second the receiver refused (memory limiter, backpressure).",
                _per_signal(config, "receiver_refused", fallback=True),
                "cps",
                thresholds=((0.001, "red"),),
            ),
            timeseries(
                "Sent by exporter",
                "Items per second each exporter delivered.",
                _per_signal(config, "exporter_sent", "exporter"),
                "cps",
            ),
            timeseries(
                "Failed by exporter",
                "Items per second each exporter failed to send after retries, or could not "
                "queue. Lost data; zero when healthy.",
                _per_signal(config, "exporter_send_failed", "exporter", fallback=True)
                + enqueue_failed,
                "cps",
                thresholds=((0.001, "red"),),
            ),
            timeseries(
                "Queue use by exporter",
                "Sending queue size over capacity per exporter; OtelcolExporterQueueNearlyFull "
                f"fires above {queue * 100:g}%.",
                [
                    prom(
                        f"max by (exporter) (otelcol_exporter_queue_size{{{collector}}} / "
                        f"otelcol_exporter_queue_capacity{{{collector}}})",
                        "{{exporter}}",
                    )
                ],
                "percentunit",
                thresholds=((queue, "red"),),
            ),
            timeseries(
                "Memory limiter refusals",
                "Items per second the memory limiter refused; zero when the collector has room.",
                _per_signal(config, "processor_memory_limiter_refused", fallback=True),
                "cps",
                thresholds=((0.001, "red"),),
            ),
            timeseries(
                "Collector memory",
                "Resident memory of each collector. The dashed line is the chart's memory limit "
                "of the collector.",
                [prom(f"otelcol_process_memory_rss{{{collector}}}", "{{instance}}")],
                "bytes",
                thresholds=((config.thresholds.limits.collector_memory_bytes, "red"),),
            ),
        ],
    )


def _backends(config: Config) -> Row:
    return Row(
        "Backends",
        [
            stat(
                "Backends up",
                "Whether Prometheus can scrape each backend (1 up, 0 down).",
                [prom(f"up{{{config.selectors.backends}}}", "{{job}}")],
                "none",
                width=12,
                thresholds=((1, "green"),),
                threshold_base="red",
                mappings=(UP_DOWN,),
            ),
            timeseries(
                "Rule evaluation and notification failures",
                "Failed Prometheus rule evaluations and failed notifications from Prometheus and "
                "Alertmanager, per second; zero when healthy.",
                [
                    prom(
                        f"sum(rate(prometheus_rule_evaluation_failures_total{RATE})){ZERO}",
                        "rule evaluations",
                    ),
                    prom(
                        f"sum(rate(prometheus_notifications_errors_total{RATE})){ZERO}",
                        "prometheus → alertmanager",
                    ),
                    prom(
                        f"sum(rate(alertmanager_notifications_failed_total{RATE})){ZERO}",
                        "alertmanager → receivers",
                    ),
                ],
                "cps",
                thresholds=((0.001, "red"),),
            ),
        ],
    )


def dashboard(config: Config) -> model.Dashboard:
    return assemble(
        UID,
        "The path of Pulse's telemetry: collector in and out, queues, and the health of "
        "Prometheus, the logs backend, Jaeger and Alertmanager.",
        [_collector(config), _backends(config)],
        [variables.prometheus()],
        (
            "OtelcolDown",
            "OtelcolExporterQueueNearlyFull",
            "PulseTelemetryAbsent",
            "LogsBackendDown",
            "VictoriaLogsRowsDropped",
        ),
    )
