"""Pulse's dashboards: what on-call opens first, each panel written against docs/telemetry.md
and the recording rules of alerts/rules/pulse-slo.yaml."""

from __future__ import annotations

from typing import Any

from dashboards.grafana import (
    Row,
    dashboard,
    datasource_variable,
    link_to,
    link_url,
    logs,
    loki,
    prom,
    query_variable,
    stat,
    table,
    timeseries,
)

RUNBOOKS = "https://github.com/pulse-observability/pulse/blob/main/alerts/runbooks"
TITLES = {
    "pulse-overview": "Pulse / Service overview",
    "pulse-streams": "Pulse / Streams",
    "pulse-logs": "Pulse / Log pipeline",
    "pulse-sensors": "Pulse / Sensors",
    "pulse-slo": "Pulse / SLOs",
    "pulse-pipeline": "Pulse / Telemetry pipeline",
}
RATE = "[$__rate_interval]"
PULSE = 'job="pulse", instance=~"$instance"'
CALLS = f'{PULSE}, rpc_method=~"$method"'
SERVER_ERRORS = "UNKNOWN|INTERNAL|UNAVAILABLE|DATA_LOSS|DEADLINE_EXCEEDED"
# Counters that move only on failure do not exist until the first one; zero is the truth then.
ZERO = " or vector(0)"


def _links(uid: str, runbooks: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    links = [link_to(other, title) for other, title in TITLES.items() if other != uid]
    return links + [link_url(f"Runbook: {name}", f"{RUNBOOKS}/{name}.md") for name in runbooks]


def _variables(*, method: bool = False, loki_too: bool = False) -> list[dict[str, Any]]:
    variables = [datasource_variable("datasource", "prometheus", "prometheus", "Prometheus")]
    if loki_too:
        variables.append(datasource_variable("loki", "loki", "loki", "Loki"))
    variables.append(
        query_variable(
            "instance",
            "Instance",
            'label_values(process_memory_usage_bytes{job="pulse"}, instance)',
        )
    )
    if method:
        variables.append(
            query_variable(
                "method",
                "Method",
                'label_values(rpc_server_call_duration_seconds_count{job="pulse"}, rpc_method)',
            )
        )
    return variables


def _quantiles(metric: str, selector: str, by: str = "") -> list[dict[str, Any]]:
    group = f"le{', ' + by if by else ''}"
    legend = f"{{{{{by}}}}} " if by else ""
    return [
        prom(
            f"histogram_quantile({q}, sum by ({group}) "
            f"(rate({metric}_bucket{{{selector}}}{RATE})))",
            f"{legend}p{int(q * 100)}",
            exemplar=True,
        )
        for q in (0.5, 0.95, 0.99)
    ]


def overview() -> dict[str, Any]:
    unary = f'{CALLS}, pulse_rpc_type="unary"'
    streams = f'{CALLS}, pulse_rpc_type!="unary"'
    count = "rpc_server_call_duration_seconds_count"
    errors = f'{count}{{{CALLS}, rpc_response_status_code=~"{SERVER_ERRORS}"}}'
    rows = [
        Row(
            "At a glance",
            [
                stat(
                    "Calls",
                    "RPCs completed per second, all methods (streams count when they end).",
                    [prom(f"sum(rate({count}{{{CALLS}}}{RATE}))")],
                    "reqps",
                ),
                stat(
                    "Server error ratio",
                    f"Share of calls that ended with a server-side error ({SERVER_ERRORS}); the "
                    "availability objective allows 0.1%.",
                    [
                        prom(
                            f"(sum(rate({errors}{RATE})){ZERO})"
                            f" / sum(rate({count}{{{CALLS}}}{RATE}))"
                        )
                    ],
                    "percentunit",
                    threshold_steps=((0.001, "orange"), (0.0144, "red")),
                ),
                stat(
                    "Active streams",
                    "Streams open right now, all streaming methods.",
                    [prom(f"sum(pulse_rpc_active_streams{{{CALLS}}})")],
                    "short",
                ),
                stat(
                    "Memory (largest instance)",
                    "Resident memory of the largest Pulse instance; the chart's default limit is "
                    "512 MiB and PulseMemoryHigh fires at 80% of it.",
                    [prom(f"max(process_memory_usage_bytes{{{PULSE}}})")],
                    "bytes",
                    threshold_steps=((429496729, "orange"), (536870912, "red")),
                ),
            ],
        ),
        Row(
            "Unary calls",
            [
                timeseries(
                    "Unary call rate by method and status",
                    "Completed unary calls per second by method and gRPC status code.",
                    [
                        prom(
                            f"sum by (rpc_method, rpc_response_status_code) "
                            f"(rate({count}{{{unary}}}{RATE}))",
                            "{{rpc_method}} {{rpc_response_status_code}}",
                        )
                    ],
                    "reqps",
                ),
                timeseries(
                    "Unary latency p50 / p95 / p99",
                    "Latency of unary calls over all selected methods. Dots are exemplars: "
                    "click one to open that call's trace in Jaeger. The dashed line is the "
                    "250 ms latency objective.",
                    _quantiles("rpc_server_call_duration_seconds", unary),
                    "s",
                    threshold_steps=((0.25, "red"),),
                ),
                timeseries(
                    "Unary p99 latency by method",
                    "99th percentile latency per unary method.",
                    [
                        prom(
                            f"histogram_quantile(0.99, sum by (le, rpc_method) "
                            f"(rate(rpc_server_call_duration_seconds_bucket{{{unary}}}{RATE})))",
                            "{{rpc_method}}",
                            exemplar=True,
                        )
                    ],
                    "s",
                    threshold_steps=((0.25, "red"),),
                ),
                timeseries(
                    "Errors by status code",
                    "Calls per second that did not end OK, by method and status code; "
                    "client faults (INVALID_ARGUMENT, UNAUTHENTICATED, …) included. Zero when "
                    "nothing failed.",
                    [
                        prom(
                            f"sum by (rpc_method, rpc_response_status_code) (rate({count}"
                            f'{{{CALLS}, rpc_response_status_code!="OK"}}{RATE})){ZERO}',
                            "{{rpc_method}} {{rpc_response_status_code}}",
                        )
                    ],
                    "reqps",
                ),
            ],
        ),
        Row(
            "Streaming calls",
            [
                timeseries(
                    "Streams ended by method and status",
                    "Streaming calls that ended per second, by method and status. A stream's "
                    "duration is its lifetime, so no latency is shown for streams: see the "
                    "Streams dashboard for schedule and delivery lag.",
                    [
                        prom(
                            f"sum by (rpc_method, rpc_response_status_code) "
                            f"(rate({count}{{{streams}}}{RATE}))",
                            "{{rpc_method}} {{rpc_response_status_code}}",
                        )
                    ],
                    "reqps",
                ),
                timeseries(
                    "Active streams by method",
                    "Streams open right now, by method.",
                    [
                        prom(
                            f"sum by (rpc_method) (pulse_rpc_active_streams{{{CALLS}}})",
                            "{{rpc_method}}",
                        )
                    ],
                    "short",
                ),
            ],
        ),
        Row(
            "Process",
            [
                timeseries(
                    "CPU",
                    "CPU time used per second by each Pulse process (1 = one core).",
                    [
                        prom(
                            f"sum by (instance) (rate(process_cpu_time_seconds_total{{{PULSE}}}"
                            f"{RATE}))",
                            "{{instance}}",
                        )
                    ],
                    "short",
                ),
                timeseries(
                    "Memory",
                    "Resident memory per Pulse process.",
                    [prom(f"process_memory_usage_bytes{{{PULSE}}}", "{{instance}}")],
                    "bytes",
                    threshold_steps=((429496729, "orange"),),
                ),
            ],
        ),
    ]
    return dashboard(
        "pulse-overview",
        TITLES["pulse-overview"],
        "Rate, errors and duration of every Pulse RPC, unary and streaming apart.",
        rows,
        _variables(method=True),
        _links(
            "pulse-overview",
            ("PulseAvailabilityBudgetBurn", "PulseUnaryLatencyBudgetBurn", "PulseMemoryHigh"),
        ),
    )


def streams() -> dict[str, Any]:
    monitor = "pulse.v1.LogService/Monitor"
    rows = [
        Row(
            "Messages",
            [
                timeseries(
                    "Messages sent by method",
                    "Stream messages Pulse sent per second.",
                    [
                        prom(
                            f"sum by (rpc_method) (rate(pulse_rpc_stream_messages_sent_total"
                            f"{{{CALLS}}}{RATE}))",
                            "{{rpc_method}}",
                        )
                    ],
                    "cps",
                ),
                timeseries(
                    "Messages received by method",
                    "Stream messages Pulse received per second.",
                    [
                        prom(
                            f"sum by (rpc_method) (rate(pulse_rpc_stream_messages_received_total"
                            f"{{{CALLS}}}{RATE}))",
                            "{{rpc_method}}",
                        )
                    ],
                    "cps",
                ),
            ],
        ),
        Row(
            "StreamMetrics",
            [
                timeseries(
                    "Schedule lag p50 / p95 / p99",
                    "How late StreamMetrics samples leave against their absolute schedule. "
                    "The dashed line is the 100 ms objective.",
                    _quantiles("pulse_metrics_schedule_lag_seconds", PULSE),
                    "s",
                    threshold_steps=((0.1, "red"),),
                ),
                timeseries(
                    "Samples skipped",
                    "Samples skipped per second because a stream fell a whole interval "
                    "behind; zero when streams keep up.",
                    [
                        prom(
                            f"sum(rate(pulse_metrics_samples_skipped_total{{{PULSE}}}{RATE}))"
                            f"{ZERO}",
                            "skipped",
                        )
                    ],
                    "cps",
                    threshold_steps=((0.001, "red"),),
                ),
            ],
        ),
        Row(
            "Monitor",
            [
                timeseries(
                    "Monitor subscribers",
                    "Monitor calls subscribed right now.",
                    [prom(f"sum(pulse_monitor_subscribers{{{PULSE}}})", "subscribers")],
                    "short",
                ),
                timeseries(
                    "Delivery lag p50 / p95 / p99",
                    "Time from accepting a log entry to sending it to a subscriber. The "
                    "dashed line is the 500 ms objective.",
                    _quantiles("pulse_monitor_delivery_lag_seconds", PULSE),
                    "s",
                    threshold_steps=((0.5, "red"),),
                ),
                timeseries(
                    "Entries delivered and dropped",
                    "Entries sent to subscribers per second, and entries dropped because a "
                    "subscriber read too slowly.",
                    [
                        prom(
                            f"sum(rate(pulse_monitor_entries_delivered_total{{{PULSE}}}{RATE}))",
                            "delivered",
                        ),
                        prom(
                            f"sum(rate(pulse_monitor_entries_dropped_total{{{PULSE}}}{RATE}))"
                            f"{ZERO}",
                            "dropped",
                        ),
                    ],
                    "cps",
                ),
                timeseries(
                    "Active Monitor streams",
                    "Monitor calls open right now per instance.",
                    [
                        prom(
                            f"sum by (instance) (pulse_rpc_active_streams{{{PULSE}, "
                            f'rpc_method="{monitor}"}})',
                            "{{instance}}",
                        )
                    ],
                    "short",
                ),
            ],
        ),
    ]
    return dashboard(
        "pulse-streams",
        TITLES["pulse-streams"],
        "Stream traffic, StreamMetrics schedule lag and Monitor delivery.",
        rows,
        _variables(method=True),
        _links(
            "pulse-streams",
            (
                "PulseScheduleLagBudgetBurn",
                "PulseDeliveryLagBudgetBurn",
                "PulseMonitorEntriesDropped",
                "PulseMetricsStreamsLagging",
            ),
        ),
    )


def log_pipeline() -> dict[str, Any]:
    entries = "pulse_ingest_entries_total"
    rows = [
        Row(
            "Ingest",
            [
                timeseries(
                    "Entries by outcome",
                    "Entries per second that agents sent, by outcome: accepted, rate_limited, "
                    "rejected.",
                    [
                        prom(
                            f"sum by (pulse_ingest_outcome) (rate({entries}{{{PULSE}}}{RATE}))",
                            "{{pulse_ingest_outcome}}",
                        )
                    ],
                    "cps",
                ),
                timeseries(
                    "Redacted and truncated",
                    "Accepted entries per second whose message was redacted (a secret "
                    "pattern matched) or truncated (too long).",
                    [
                        prom(
                            f"sum by (pulse_ingest_modification) (rate("
                            f"pulse_ingest_modifications_total{{{PULSE}}}{RATE})){ZERO}",
                            "{{pulse_ingest_modification}}",
                        )
                    ],
                    "cps",
                ),
                timeseries(
                    "Rate limiting by scope",
                    "Entries refused per second by the global, per-source or per-task rate limit.",
                    [
                        prom(
                            f"sum by (pulse_ratelimit_scope) (rate("
                            f"pulse_ingest_rate_limited_total{{{PULSE}}}{RATE})){ZERO}",
                            "{{pulse_ratelimit_scope}}",
                        )
                    ],
                    "cps",
                ),
                timeseries(
                    "Batches by outcome",
                    "Batches per second: applied, duplicate (a retried batch id, applied "
                    "once) and invalid.",
                    [
                        prom(
                            f"sum by (pulse_ingest_batch_outcome) (rate("
                            f"pulse_ingest_batches_total{{{PULSE}}}{RATE}))",
                            "{{pulse_ingest_batch_outcome}}",
                        )
                    ],
                    "cps",
                ),
                stat(
                    "Ring buffer use",
                    "Share of the Monitor ring buffer in use; backlogs replay from it.",
                    [
                        prom(
                            f"sum(pulse_log_buffer_entries{{{PULSE}}}) / "
                            f"sum(pulse_log_buffer_capacity{{{PULSE}}})"
                        )
                    ],
                    "percentunit",
                    width=12,
                    height=8,
                ),
                timeseries(
                    "Pulse log lines",
                    "Log lines per minute that Pulse's own processes wrote, from Loki.",
                    [loki('sum(count_over_time({service_name="pulse"}[1m]))', "lines")],
                    "short",
                ),
            ],
        ),
        Row(
            "Logs",
            [
                logs(
                    "Pulse logs",
                    "Pulse's logs from Loki, newest first. The trace_id field of a line links to "
                    "its trace in Jaeger.",
                    [loki('{service_name="pulse"}')],
                ),
            ],
        ),
    ]
    return dashboard(
        "pulse-logs",
        TITLES["pulse-logs"],
        "Log ingest by outcome, buffer use, and Pulse's logs linked to traces.",
        rows,
        _variables(loki_too=True),
        _links("pulse-logs", ("PulseIngestRateLimited", "PulseIngestRejected")),
    )


def sensors() -> dict[str, Any]:
    sensor = f'{PULSE}, pulse_sensor_id=~"$sensor"'
    readings = "pulse_sensor_readings_total"

    def temperature(statistic: str) -> dict[str, Any]:
        return prom(
            f'pulse_sensor_temperature_celsius{{{sensor}, pulse_sensor_statistic="{statistic}"}}',
            f"{{{{pulse_sensor_id}}}} {statistic}",
        )

    rows = [
        Row(
            "Temperature",
            [
                timeseries(
                    "Temperature per sensor (min, avg, max)",
                    "The rolling summary of each sensor's last readings: minimum, average "
                    "and maximum.",
                    [temperature("min"), temperature("avg"), temperature("max")],
                    "celsius",
                    width=24,
                ),
                table(
                    "Latest summary per sensor",
                    "The current minimum, average and maximum of each sensor.",
                    [
                        prom(
                            f"pulse_sensor_temperature_celsius{{{sensor}}}",
                            instant=True,
                            table=True,
                        )
                    ],
                    "celsius",
                    width=24,
                    extra={
                        "transformations": [
                            {
                                "id": "groupingToMatrix",
                                "options": {
                                    "columnField": "pulse_sensor_statistic",
                                    "rowField": "pulse_sensor_id",
                                    "valueField": "Value",
                                },
                            }
                        ]
                    },
                ),
            ],
        ),
        Row(
            "Readings",
            [
                timeseries(
                    "Readings by outcome",
                    "Readings per second: accepted, duplicate (a retried reading, kept "
                    "once) and rejected.",
                    [
                        prom(
                            f"sum by (pulse_sensor_outcome) (rate({readings}{{{PULSE}}}{RATE}))",
                            "{{pulse_sensor_outcome}}",
                        )
                    ],
                    "cps",
                ),
                timeseries(
                    "Rejected and duplicate share",
                    "Share of readings rejected (PulseSensorReadingsRejected fires above 5%) "
                    "and duplicates.",
                    [
                        prom(
                            f'(sum(rate({readings}{{{PULSE}, pulse_sensor_outcome="rejected"}}'
                            f"{RATE})){ZERO}) / sum(rate({readings}{{{PULSE}}}{RATE}))",
                            "rejected",
                        ),
                        prom(
                            f'(sum(rate({readings}{{{PULSE}, pulse_sensor_outcome="duplicate"}}'
                            f"{RATE})){ZERO}) / sum(rate({readings}{{{PULSE}}}{RATE}))",
                            "duplicate",
                        ),
                    ],
                    "percentunit",
                    threshold_steps=((0.05, "red"),),
                ),
                timeseries(
                    "Summary watchers",
                    "WatchSummaries calls open right now.",
                    [prom(f"sum(pulse_sensor_watchers{{{PULSE}}})", "watchers")],
                    "short",
                ),
            ],
        ),
    ]
    variables = [
        *_variables(),
        query_variable(
            "sensor",
            "Sensor",
            'label_values(pulse_sensor_temperature_celsius{job="pulse"}, pulse_sensor_id)',
        ),
    ]
    return dashboard(
        "pulse-sensors",
        TITLES["pulse-sensors"],
        "Rolling temperature summaries per sensor and the readings behind them.",
        rows,
        variables,
        _links("pulse-sensors", ("PulseSensorReadingsRejected",)),
    )


def _burn_panel(title: str, record: str, budget: float, by: str, objective: str) -> Any:
    legend = f"{{{{{by}}}}} " if by else ""
    group = f"max by ({by})" if by else "max"
    selector = '{rpc_method=~"$method"}' if by == "rpc_method" else ""
    windows = ("5m", "30m", "1h", "6h", "1d", "3d")
    return timeseries(
        title,
        f"Burn rate per window: the error ratio over the window divided by the budget "
        f"({objective}). 1 spends the 30-day budget in exactly 30 days. The page fires at "
        "14.4 (1h and 5m) or 6 (6h and 30m), the ticket at 3 (1d and 2h) or 1 (3d and 6h).",
        [
            prom(f"{group} ({record.format(w=w)}{selector}) / {budget:g}", f"{legend}{w}")
            for w in windows
        ],
        "short",
        threshold_steps=((1, "yellow"), (6, "orange"), (14.4, "red")),
    )


def _budget_stat(
    title: str, record: str, budget: float, group: str, selector: str, legend: str
) -> Any:
    panel = stat(
        title,
        "Share of the 30-day error budget not yet spent (negative: overspent).",
        [prom(f"{group} (1 - {record.format(w='30d')}{selector} / {budget:g})", legend)],
        "percentunit",
        width=12,
    )
    panel.threshold_base, panel.threshold_steps = "red", ((0, "orange"), (0.25, "green"))
    panel.options["textMode"] = "value_and_name"
    return panel


def slo() -> dict[str, Any]:
    availability = "rpc_method:pulse_rpc_errors:ratio_rate{w}"
    unary = "rpc_method:pulse_rpc_unary_slow:ratio_rate{w}"
    schedule = "job:pulse_metrics_schedule_lag_slow:ratio_rate{w}"
    delivery = "job:pulse_monitor_delivery_lag_slow:ratio_rate{w}"
    rows = [
        Row(
            "Availability: 99.9% of calls without a server-side error",
            [
                _burn_panel("Availability burn rate", availability, 0.001, "rpc_method", "0.1%"),
                _budget_stat(
                    "Availability budget remaining (30d)",
                    availability,
                    0.001,
                    "min by (rpc_method)",
                    '{rpc_method=~"$method"}',
                    "{{rpc_method}}",
                ),
            ],
        ),
        Row(
            "Latency: 99% of unary calls within 250 ms",
            [
                _burn_panel("Unary latency burn rate", unary, 0.01, "rpc_method", "1%"),
                _budget_stat(
                    "Unary latency budget remaining (30d)",
                    unary,
                    0.01,
                    "min by (rpc_method)",
                    '{rpc_method=~"$method"}',
                    "{{rpc_method}}",
                ),
            ],
        ),
        Row(
            "Streams: 99% of samples within 100 ms, 99% of deliveries within 500 ms",
            [
                _burn_panel("StreamMetrics schedule lag burn rate", schedule, 0.01, "", "1%"),
                _burn_panel("Monitor delivery lag burn rate", delivery, 0.01, "", "1%"),
                _budget_stat(
                    "Schedule lag budget remaining (30d)", schedule, 0.01, "min", "", "remaining"
                ),
                _budget_stat(
                    "Delivery lag budget remaining (30d)", delivery, 0.01, "min", "", "remaining"
                ),
            ],
        ),
        Row(
            "Alerts",
            [
                table(
                    "Firing alerts",
                    "Alerts of alerts/rules firing now (Watchdog always fires: it proves the "
                    "path works). Each alert's runbook_url says what to do.",
                    [prom('sort_desc(ALERTS{alertstate="firing"})', instant=True, table=True)],
                    "none",
                    width=24,
                    extra={
                        "transformations": [
                            {
                                "id": "organize",
                                "options": {
                                    "excludeByName": {
                                        "Time": True,
                                        "Value": True,
                                        "__name__": True,
                                        "alertstate": True,
                                    }
                                },
                            }
                        ]
                    },
                ),
            ],
        ),
    ]
    variables = [
        datasource_variable("datasource", "prometheus", "prometheus", "Prometheus"),
        query_variable(
            "method", "Method", "label_values(rpc_method:pulse_rpc_errors:ratio_rate5m, rpc_method)"
        ),
    ]
    return dashboard(
        "pulse-slo",
        TITLES["pulse-slo"],
        "Burn rates and error budgets of Pulse's objectives, and what is firing.",
        rows,
        variables,
        _links(
            "pulse-slo",
            (
                "PulseAvailabilityBudgetBurn",
                "PulseUnaryLatencyBudgetBurn",
                "PulseScheduleLagBudgetBurn",
                "PulseDeliveryLagBudgetBurn",
            ),
        ),
    )


UP_DOWN = [
    {
        "type": "value",
        "options": {
            "0": {"text": "DOWN", "color": "red", "index": 0},
            "1": {"text": "UP", "color": "green", "index": 1},
        },
    }
]
SIGNALS = (("spans", "traces"), ("metric_points", "metrics"), ("log_records", "logs"))


def _per_signal(metric: str, by: str = "", fallback: bool = False) -> list[dict[str, Any]]:
    group = f"sum by ({by})" if by else "sum"
    legend = f"{{{{{by}}}}} " if by else ""
    zero = ZERO if fallback else ""
    return [
        prom(
            f'{group} (rate(otelcol_{metric}_{suffix}{{job="otelcol"}}{RATE})){zero}',
            f"{legend}{signal}",
        )
        for suffix, signal in SIGNALS
    ]


def pipeline() -> dict[str, Any]:
    rows = [
        Row(
            "Collector",
            [
                timeseries(
                    "Accepted by the receiver",
                    "Items per second the collector's OTLP receiver accepted, per signal.",
                    _per_signal("receiver_accepted"),
                    "cps",
                ),
                timeseries(
                    "Refused by the receiver",
                    "Items per second the receiver refused (memory limiter, backpressure).",
                    _per_signal("receiver_refused", fallback=True),
                    "cps",
                    threshold_steps=((0.001, "red"),),
                ),
                timeseries(
                    "Sent by exporter",
                    "Items per second each exporter delivered.",
                    _per_signal("exporter_sent", "exporter"),
                    "cps",
                ),
                timeseries(
                    "Failed by exporter",
                    "Items per second each exporter failed to send after retries, or could "
                    "not queue. Lost data; zero when healthy.",
                    _per_signal("exporter_send_failed", "exporter", fallback=True)
                    + [
                        prom(
                            f'sum (rate(otelcol_exporter_enqueue_failed_{s}{{job="otelcol"}}'
                            f"{RATE})){ZERO}",
                            f"enqueue failed {sig}",
                        )
                        for s, sig in SIGNALS
                    ],
                    "cps",
                    threshold_steps=((0.001, "red"),),
                ),
                timeseries(
                    "Queue use by exporter",
                    "Sending queue size over capacity per exporter; "
                    "OtelcolExporterQueueNearlyFull fires above 80%.",
                    [
                        prom(
                            'max by (exporter) (otelcol_exporter_queue_size{job="otelcol"} / '
                            'otelcol_exporter_queue_capacity{job="otelcol"})',
                            "{{exporter}}",
                        )
                    ],
                    "percentunit",
                    threshold_steps=((0.8, "red"),),
                ),
                timeseries(
                    "Memory limiter refusals",
                    "Items per second the memory limiter refused; zero when the collector "
                    "has room.",
                    _per_signal("processor_memory_limiter_refused", fallback=True),
                    "cps",
                    threshold_steps=((0.001, "red"),),
                ),
                timeseries(
                    "Collector memory",
                    "Resident memory of each collector.",
                    [prom('otelcol_process_memory_rss{job="otelcol"}', "{{instance}}")],
                    "bytes",
                ),
            ],
        ),
        Row(
            "Backends",
            [
                stat(
                    "Backends up",
                    "Whether Prometheus can scrape each backend (1 up, 0 down).",
                    [prom('up{job=~"prometheus|loki|jaeger|alertmanager|otelcol"}', "{{job}}")],
                    "none",
                    width=12,
                    threshold_steps=((1, "green"),),
                    threshold_base="red",
                    mappings=UP_DOWN,
                ),
                timeseries(
                    "Rule evaluation and notification failures",
                    "Failed Prometheus rule evaluations and failed notifications from "
                    "Prometheus and Alertmanager, per second; zero when healthy.",
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
                    threshold_steps=((0.001, "red"),),
                ),
            ],
        ),
    ]
    return dashboard(
        "pulse-pipeline",
        TITLES["pulse-pipeline"],
        "The path of Pulse's telemetry: collector in and out, queues, and the "
        "health of Prometheus, Loki, Jaeger and Alertmanager.",
        rows,
        [datasource_variable("datasource", "prometheus", "prometheus", "Prometheus")],
        _links(
            "pulse-pipeline",
            ("OtelcolDown", "OtelcolExporterQueueNearlyFull", "PulseTelemetryAbsent"),
        ),
    )


DASHBOARDS = {
    "pulse-overview": overview,
    "pulse-streams": streams,
    "pulse-logs": log_pipeline,
    "pulse-sensors": sensors,
    "pulse-slo": slo,
    "pulse-pipeline": pipeline,
}
