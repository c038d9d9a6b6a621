"""Pulse's service level objectives as recording rules and multi-window multi-burn-rate alerts.

Each objective yields one recording rule per window (level:metric:operations) and one
<Name>BudgetBurn alert in the form of the SRE Workbook: the page (critical) on 14.4x over 1h and
5m or 6x over 6h and 30m, the ticket (warning) on 3x over 1d and 2h or 1x over 3d and 6h. A
single alert name per objective lets the page inhibit the ticket. One group per objective: the
rules of a group run in order, so the alerts read the ratios recorded in the same evaluation.
"""

from __future__ import annotations

from alerts.config import (
    BURN_FOR,
    BURNS,
    DASHBOARDS,
    OBJECTIVES,
    SLO_WINDOWS,
    Burn,
    Config,
    Objective,
)
from alerts.model import Alert, Group, Record, RuleFile

__all__ = ["FILE", "bad_ratio", "rule_file"]

FILE = "pulse-slo.yaml"
CALLS = "rpc_server_call_duration_seconds"


def _slow_share(metric: str, selector: str, le: float, by: str) -> str:
    total = f"sum by ({by}) (rate({metric}_count{{{selector}}}[{{w}}]))"
    fast = f'sum by ({by}) (rate({metric}_bucket{{{selector}, le="{le:g}"}}[{{w}}]))'
    return f"1 - {fast}\n/\n{total}"


def _availability(config: Config, by: str) -> str:
    pulse = config.selectors.pulse
    errors = config.server_errors.rate(f"{CALLS}_count", pulse, "{w}", "\n    or\n    ")
    total = f"sum by ({by}) (rate({CALLS}_count{{{pulse}}}[{{w}}]))"
    # `or 0 * total` keeps the ratio at 0, not absent, while nothing fails.
    return f"(\n  sum by ({by}) (\n    {errors}\n  )\n  or\n  0 * {total}\n)\n/\n{total}"


def bad_ratio(config: Config, slo: Objective) -> str:
    """PromQL of the share of bad events of `slo`, with {w} for the window."""
    pulse = config.selectors.pulse
    if slo.slo == "availability":
        return _availability(config, slo.by)
    if slo.slo == "unary-latency":
        selector = f'{pulse}, pulse_rpc_type="unary"'
        return _slow_share(CALLS, selector, slo.latency_s, slo.by)
    if slo.slo == "schedule-lag":
        return _slow_share("pulse_metrics_schedule_lag_seconds", pulse, slo.latency_s, slo.by)
    if slo.slo == "delivery-lag":
        return _slow_share("pulse_monitor_delivery_lag_seconds", pulse, slo.latency_s, slo.by)
    raise ValueError(f"no bad-event ratio for objective {slo.slo!r}")


def _bad(config: Config, slo: Objective) -> str:
    """What one bad event is, for the description."""
    if slo.latency_s is None:
        return f"server-side errors ({config.server_errors.describe()})"
    millis = f"{slo.latency_s * 1000:g} ms"
    return {
        "unary-latency": f"slower than {millis}",
        "schedule-lag": f"sent more than {millis} after their scheduled time",
        "delivery-lag": f"delivered more than {millis} after they were ingested",
    }[slo.slo]


def _burn(slo: Objective, burn: Burn) -> str:
    threshold = f"({burn.factor:g} * {slo.budget:g})"
    return (
        f"  {slo.recorded(burn.long)} > {threshold}\n"
        f"  and\n"
        f"  {slo.recorded(burn.short)} > {threshold}"
    )


def _alert(config: Config, slo: Objective, pair: tuple[Burn, Burn]) -> Alert:
    first, second = pair
    severity = first.severity
    scope = " on {{ $labels.rpc_method }}" if "rpc_method" in slo.by else ""
    speed = "fast" if severity == "critical" else "slowly"
    consumed = (
        "2% of the 30-day budget in 1 hour or 5% in 6 hours"
        if severity == "critical"
        else "10% of the 30-day budget in 3 days or all of it within 30 days"
    )
    return Alert(
        name=slo.alert,
        expr=f"(\n{_burn(slo, first)}\n)\nor\n(\n{_burn(slo, second)}\n)",
        for_=BURN_FOR[severity],
        severity=severity,
        service="pulse",
        labels={"slo": slo.slo},
        summary=f"Pulse is burning its {slo.slo} error budget {speed}{scope}.",
        description=(
            f"{{{{ $value | humanizePercentage }}}} of {slo.what}{scope} were "
            f"{_bad(config, slo)} over the long window; the objective allows "
            f"{slo.budget * 100:g}%. At this rate Pulse spends {consumed}."
        ),
        dashboard=DASHBOARDS["slo"],
    )


def _group(config: Config, slo: Objective) -> Group:
    ratio = bad_ratio(config, slo)
    records = tuple(Record(slo.recorded(w), ratio.replace("{w}", w)) for w in SLO_WINDOWS)
    pages, tickets = (BURNS[0], BURNS[1]), (BURNS[2], BURNS[3])
    alerts = (_alert(config, slo, pages), _alert(config, slo, tickets))
    return Group(f"pulse-slo-{slo.slo}", records + alerts)


def rule_file(config: Config) -> RuleFile:
    return RuleFile(FILE, __doc__, tuple(_group(config, slo) for slo in OBJECTIVES))
