"""Pulse / Streams: stream traffic, StreamMetrics schedule lag and Monitor delivery."""

from __future__ import annotations

from grafana_foundation_sdk.models import dashboard as model

from alerts.config import DASHBOARDS, Config, objective
from dashboards import variables
from dashboards.common import Query, Row, assemble, prom, timeseries
from dashboards.queries import CALLS, PULSE, RATE, ZERO, quantiles

__all__ = ["dashboard"]

UID = DASHBOARDS["streams"]
MONITOR = "pulse.v1.LogService/Monitor"


def _messages() -> Row:
    def per_method(direction: str) -> list[Query]:
        return [
            prom(
                f"sum by (rpc_method) (rate(pulse_rpc_stream_messages_{direction}_total"
                f"{{{CALLS}}}{RATE}))",
                "{{rpc_method}}",
            )
        ]

    return Row(
        "Messages",
        [
            timeseries(
                "Messages sent by method",
                "Stream messages Pulse sent per second.",
                per_method("sent"),
                "cps",
            ),
            timeseries(
                "Messages received by method",
                "Stream messages Pulse received per second.",
                per_method("received"),
                "cps",
            ),
        ],
    )


def _stream_metrics(config: Config) -> Row:
    lag = objective("schedule-lag").latency_s
    return Row(
        "StreamMetrics",
        [
            timeseries(
                "Schedule lag p50 / p95 / p99",
                "How late StreamMetrics samples leave against their absolute schedule. The "
                f"dashed line is the {lag * 1000:g} ms objective.",
                quantiles("pulse_metrics_schedule_lag_seconds", PULSE),
                "s",
                thresholds=((lag, "red"),),
            ),
            timeseries(
                "Samples skipped",
                "Samples skipped per second because a stream fell a whole interval behind; "
                "zero when streams keep up.",
                [
                    prom(
                        f"sum(rate(pulse_metrics_samples_skipped_total{{{PULSE}}}{RATE})){ZERO}",
                        "skipped",
                    )
                ],
                "cps",
                thresholds=((0.001, "red"),),
            ),
        ],
    )


def _monitor() -> Row:
    lag = objective("delivery-lag").latency_s
    return Row(
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
                "Time from accepting a log entry to sending it to a subscriber. The dashed line "
                f"is the {lag * 1000:g} ms objective.",
                quantiles("pulse_monitor_delivery_lag_seconds", PULSE),
                "s",
                thresholds=((lag, "red"),),
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
                        f"sum(rate(pulse_monitor_entries_dropped_total{{{PULSE}}}{RATE})){ZERO}",
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
                        "sum by (instance) (pulse_rpc_active_streams"
                        f'{{{PULSE}, rpc_method="{MONITOR}"}})',
                        "{{instance}}",
                    )
                ],
                "short",
            ),
        ],
    )


def dashboard(config: Config) -> model.Dashboard:
    return assemble(
        UID,
        "Stream traffic, StreamMetrics schedule lag and Monitor delivery.",
        [_messages(), _stream_metrics(config), _monitor()],
        [variables.prometheus(), variables.instance(), variables.method()],
        (
            "PulseScheduleLagBudgetBurn",
            "PulseDeliveryLagBudgetBurn",
            "PulseMonitorEntriesDropped",
            "PulseMetricsStreamsLagging",
        ),
    )
