"""Pulse / SLOs: burn rate per window and budget remaining for each objective of
alerts/config.py, read from the recording rules of alerts/rules/pulse-slo.yaml, and what is
firing."""

from __future__ import annotations

from grafana_foundation_sdk.models import dashboard as model

from alerts.config import (
    BUDGET_PERIOD,
    BURNS,
    DASHBOARDS,
    OBJECTIVES,
    Config,
    Objective,
    objective,
)
from dashboards import variables
from dashboards.common import Row, assemble, prom, stat, table, timeseries, transformation

__all__ = ["dashboard"]

UID = DASHBOARDS["slo"]
METHOD = '{rpc_method=~"$method"}'


def _windows() -> list[str]:
    """Every burn window, shortest first."""
    order = {"m": 60, "h": 3600, "d": 86400}
    windows = {w for burn in BURNS for w in (burn.long, burn.short)}
    return sorted(windows, key=lambda w: int(w[:-1]) * order[w[-1]])


def _burn_text() -> str:
    def pairs(severity: str) -> str:
        return " or ".join(
            f"{b.factor:g} ({b.long} and {b.short})" for b in BURNS if b.severity == severity
        )

    return f"The page fires at {pairs('critical')}, the ticket at {pairs('warning')}."


def _burn_thresholds() -> tuple[tuple[float, str], ...]:
    """Yellow from the slowest ticket burn; orange and red at the two page burns."""
    ticket = min(b.factor for b in BURNS if b.severity == "warning")
    slow_page, fast_page = sorted(b.factor for b in BURNS if b.severity == "critical")
    return ((ticket, "yellow"), (slow_page, "orange"), (fast_page, "red"))


def _per_method(slo: Objective) -> bool:
    return "rpc_method" in slo.by


def _burn_panel(slo: Objective, title: str) -> object:
    by_method = _per_method(slo)
    group, selector = ("max by (rpc_method)", METHOD) if by_method else ("max", "")
    legend = "{{rpc_method}} " if by_method else ""
    return timeseries(
        title,
        "Burn rate per window: the error ratio over the window divided by the budget "
        f"({slo.budget * 100:g}%). 1 spends the 30-day budget in exactly 30 days. {_burn_text()}",
        [
            prom(f"{group} ({slo.recorded(w)}{selector}) / {slo.budget:g}", f"{legend}{w}")
            for w in _windows()
        ],
        "short",
        thresholds=_burn_thresholds(),
    )


def _budget_stat(slo: Objective, title: str) -> object:
    by_method = _per_method(slo)
    group, selector = ("min by (rpc_method)", METHOD) if by_method else ("min", "")
    legend = "{{rpc_method}}" if by_method else "remaining"
    record = slo.recorded(BUDGET_PERIOD)
    return stat(
        title,
        "Share of the 30-day error budget not yet spent (negative: overspent).",
        [prom(f"{group} (1 - {record}{selector} / {slo.budget:g})", legend)],
        "percentunit",
        width=12,
        thresholds=((0, "orange"), (0.25, "green")),
        threshold_base="red",
        with_names=True,
    )


def _objectives() -> list[Row]:
    availability, unary = objective("availability"), objective("unary-latency")
    schedule, delivery = objective("schedule-lag"), objective("delivery-lag")
    return [
        Row(
            f"Availability: {availability.target * 100:g}% of calls without a server-side error",
            [
                _burn_panel(availability, "Availability burn rate"),
                _budget_stat(availability, "Availability budget remaining (30d)"),
            ],
        ),
        Row(
            f"Latency: {unary.target * 100:g}% of unary calls within {unary.latency_s * 1000:g} ms",
            [
                _burn_panel(unary, "Unary latency burn rate"),
                _budget_stat(unary, "Unary latency budget remaining (30d)"),
            ],
        ),
        Row(
            f"Streams: {schedule.target * 100:g}% of samples within "
            f"{schedule.latency_s * 1000:g} ms, {delivery.target * 100:g}% of deliveries "
            f"within {delivery.latency_s * 1000:g} ms",
            [
                _burn_panel(schedule, "StreamMetrics schedule lag burn rate"),
                _burn_panel(delivery, "Monitor delivery lag burn rate"),
                _budget_stat(schedule, "Schedule lag budget remaining (30d)"),
                _budget_stat(delivery, "Delivery lag budget remaining (30d)"),
            ],
        ),
    ]


def _alerts() -> Row:
    return Row(
        "Alerts",
        [
            table(
                "Firing alerts",
                "Alerts of alerts/rules firing now (Watchdog always fires: it proves the path "
                "works). Each alert's runbook_url says what to do.",
                [prom('sort_desc(ALERTS{alertstate="firing"})', instant=True)],
                "none",
                transformations=[
                    transformation(
                        "organize",
                        {
                            "excludeByName": {
                                "Time": True,
                                "Value": True,
                                "__name__": True,
                                "alertstate": True,
                            }
                        },
                    )
                ],
            )
        ],
    )


def dashboard(config: Config) -> model.Dashboard:
    availability = objective("availability")
    return assemble(
        UID,
        "Burn rates and error budgets of Pulse's objectives, and what is firing.",
        [*_objectives(), _alerts()],
        [variables.prometheus(), variables.slo_method(availability.recorded("5m"))],
        tuple(slo.alert for slo in OBJECTIVES),
    )
