"""The backends on-call relies on: Prometheus must evaluate rules and reach Alertmanager,
Alertmanager must reach the receivers, the logs backend (Loki or VictoriaLogs) and Jaeger must
be up and keep what they are sent. A backend outage carries the `backend` label of the
collector exporter that feeds it (the exporter name after the slash), which it inhibits.
"""

from __future__ import annotations

from alerts.config import DASHBOARDS, Config
from alerts.model import Alert, Group, RuleFile

__all__ = ["FILE", "rule_file"]

FILE = "backends.yaml"
PIPELINE = DASHBOARDS["pipeline"]


def _rule_evaluation_failures(config: Config) -> Alert:
    return Alert(
        name="PrometheusRuleEvaluationFailures",
        expr=(
            "sum by (job, instance, rule_group) "
            "(increase(prometheus_rule_evaluation_failures_total[5m])) > 0"
        ),
        for_="15m",
        severity="warning",
        service="prometheus",
        summary="Prometheus fails to evaluate rules of group {{ $labels.rule_group }}.",
        description=(
            "{{ $value | humanize }} evaluations of {{ $labels.rule_group }} failed on "
            "{{ $labels.instance }} over the last 5 minutes; alerts of that group may never fire."
        ),
        dashboard=PIPELINE,
    )


def _failed_share(failed: str, sent: str, by: str, limit: float) -> str:
    return f"sum by ({by}) (rate({failed}[5m]))\n/\nsum by ({by}) (rate({sent}[5m]))\n> {limit:g}"


def _prometheus_notifications(config: Config) -> Alert:
    return Alert(
        name="PrometheusNotificationsFailing",
        expr=_failed_share(
            "prometheus_notifications_errors_total",
            "prometheus_notifications_sent_total",
            "job, instance, alertmanager",
            config.thresholds.notifications_failed_ratio,
        ),
        for_="15m",
        severity="warning",
        service="prometheus",
        summary="Prometheus fails to send alerts to Alertmanager {{ $labels.alertmanager }}.",
        description=(
            "{{ $value | humanizePercentage }} of the notifications from {{ $labels.instance }} "
            "to {{ $labels.alertmanager }} failed over the last 5 minutes; alerts may not arrive."
        ),
        dashboard=PIPELINE,
    )


def _alertmanager_notifications(config: Config) -> Alert:
    return Alert(
        name="AlertmanagerNotificationsFailing",
        expr=_failed_share(
            "alertmanager_notifications_failed_total",
            "alertmanager_notifications_total",
            "job, instance, integration",
            config.thresholds.notifications_failed_ratio,
        ),
        for_="5m",
        severity="warning",
        service="alertmanager",
        summary="Alertmanager fails to deliver {{ $labels.integration }} notifications.",
        description=(
            "{{ $value | humanizePercentage }} of the {{ $labels.integration }} notifications "
            "from {{ $labels.instance }} failed over the last 5 minutes; receivers may miss "
            "alerts."
        ),
        dashboard=PIPELINE,
    )


def _logs_backend_down(config: Config) -> Alert:
    logs = config.selectors.logs_backends
    # The second branch covers a backend that vanished from Prometheus's targets altogether
    # (no `up` series to be 0); the first names the instance that is down.
    return Alert(
        name="LogsBackendDown",
        expr=f"up{{{logs}}} == 0\nor\nabsent(up{{{logs}}})",
        for_="5m",
        severity="warning",
        service="logs-backend",
        labels={"backend": "logs"},
        summary=(
            "{{ if $labels.job }}The logs backend {{ $labels.job }} at {{ $labels.instance }} is "
            "down.{{ else }}Prometheus scrapes no logs backend.{{ end }}"
        ),
        description=(
            "{{ if $labels.job }}Prometheus has not been able to scrape {{ $labels.job }} at "
            "{{ $labels.instance }} for 5 minutes.{{ else }}No Loki or VictoriaLogs target has "
            "been scraped for 5 minutes.{{ end }} New logs wait in the collector's queue and log "
            "search in Grafana fails."
        ),
        dashboard=PIPELINE,
    )


def _rows_dropped(config: Config) -> Alert:
    # reason="debug" counts rows sent with the debug parameter, which are logged, not stored,
    # on purpose.
    return Alert(
        name="VictoriaLogsRowsDropped",
        expr=(
            "sum by (job, instance, reason) (increase(vl_rows_dropped_total"
            f'{{{config.selectors.victorialogs}, reason!="debug"}}[10m])) > 0'
        ),
        for_="5m",
        severity="warning",
        service="victorialogs",
        summary="VictoriaLogs {{ $labels.instance }} drops log records ({{ $labels.reason }}).",
        description=(
            "VictoriaLogs at {{ $labels.instance }} dropped {{ $value | humanize }} log records "
            "over the last 10 minutes with reason {{ $labels.reason }}. It answered the "
            "collector with success, so nothing retries them: they are lost."
        ),
        dashboard=PIPELINE,
    )


def _jaeger_down(config: Config) -> Alert:
    return Alert(
        name="JaegerDown",
        expr=f"up{{{config.selectors.jaeger}}} == 0",
        for_="5m",
        severity="warning",
        service="jaeger",
        labels={"backend": "jaeger"},
        summary="Jaeger {{ $labels.instance }} is down.",
        description=(
            "Prometheus cannot scrape Jaeger at {{ $labels.instance }} for 5 minutes. New spans "
            "wait in the collector's queue and exemplar and log links to traces fail."
        ),
        dashboard=PIPELINE,
    )


def rule_file(config: Config) -> RuleFile:
    alerts = (
        _rule_evaluation_failures(config),
        _prometheus_notifications(config),
        _alertmanager_notifications(config),
        _logs_backend_down(config),
        _rows_dropped(config),
        _jaeger_down(config),
    )
    return RuleFile(FILE, __doc__, (Group("backends", alerts),))
