#!/usr/bin/env python3
"""Pulse's service level objectives, written out as Prometheus rules.

    python alerts/slo.py          # rewrite alerts/rules/pulse-slo.yaml
    python alerts/slo.py --check  # exit 1 when the committed file differs

Each objective yields one recording rule per window (`level:metric:operations`) and one
`<Name>BudgetBurn` alert in the multi-window multi-burn-rate form of the SRE Workbook: the page
(critical) on 14.4x over 1h and 5m or 6x over 6h and 30m, the ticket (warning) on 3x over 1d
and 2h or 1x over 3d and 6h. A single alert name per objective lets the page inhibit the ticket.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
OUTPUT = HERE / "rules" / "pulse-slo.yaml"
RUNBOOKS = "https://github.com/pulse-observability/pulse/blob/main/alerts/runbooks"
WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d")
SERVER_ERRORS = "UNKNOWN|INTERNAL|UNAVAILABLE|DATA_LOSS|DEADLINE_EXCEEDED"
CALLS = 'rpc_server_call_duration_seconds_count{job="pulse"}'


@dataclass(frozen=True)
class Burn:
    severity: str
    long: str
    short: str
    factor: float


# The SRE Workbook's recommended window pairs and burn factors, for a 30-day budget.
BURNS = (
    Burn("critical", "1h", "5m", 14.4),
    Burn("critical", "6h", "30m", 6),
    Burn("warning", "1d", "2h", 3),
    Burn("warning", "3d", "6h", 1),
)
# The short window already stops a burn that is over; `for` only rides out a single bad scrape.
FOR = {"critical": "2m", "warning": "15m"}


@dataclass(frozen=True)
class Objective:
    alert: str
    record: str  # level:metric:operations, with {window} in the operations part
    by: str
    target: float
    what: str  # completes "... of {what} ..."
    bad: str  # what one bad event is, for the description
    ratio: str  # PromQL of the bad-event ratio, with {w} for the window
    labels: dict[str, str]

    @property
    def budget(self) -> float:
        return round(1 - self.target, 6)


def _slow_share(metric: str, selector: str, le: str, by: str) -> str:
    total = f"sum by ({by}) (rate({metric}_count{{{selector}}}[{{w}}]))"
    fast = f'sum by ({by}) (rate({metric}_bucket{{{selector}, le="{le}"}}[{{w}}]))'
    return f"1 - {fast}\n/\n{total}"


OBJECTIVES = (
    Objective(
        alert="PulseAvailabilityBudgetBurn",
        record="rpc_method:pulse_rpc_errors:ratio_rate{window}",
        by="job, rpc_method",
        target=0.999,
        what="calls",
        bad="server-side errors (" + SERVER_ERRORS.replace("|", ", ") + ")",
        # `or 0 * total` keeps the ratio at 0, not absent, while nothing fails.
        ratio=(
            "(\n  sum by (job, rpc_method) (rate(rpc_server_call_duration_seconds_count"
            f'{{job="pulse", rpc_response_status_code=~"{SERVER_ERRORS}"}}[{{w}}]))\n'
            f"  or\n  0 * sum by (job, rpc_method) (rate({CALLS}[{{w}}]))\n)\n/\n"
            f"sum by (job, rpc_method) (rate({CALLS}[{{w}}]))"
        ),
        labels={"slo": "availability"},
    ),
    Objective(
        alert="PulseUnaryLatencyBudgetBurn",
        record="rpc_method:pulse_rpc_unary_slow:ratio_rate{window}",
        by="job, rpc_method",
        target=0.99,
        what="unary calls",
        bad="slower than 250 ms",
        ratio=_slow_share(
            "rpc_server_call_duration_seconds",
            'job="pulse", pulse_rpc_type="unary"',
            "0.25",
            "job, rpc_method",
        ),
        labels={"slo": "unary-latency"},
    ),
    Objective(
        alert="PulseScheduleLagBudgetBurn",
        record="job:pulse_metrics_schedule_lag_slow:ratio_rate{window}",
        by="job",
        target=0.99,
        what="StreamMetrics samples",
        bad="sent more than 100 ms after their scheduled time",
        ratio=_slow_share("pulse_metrics_schedule_lag_seconds", 'job="pulse"', "0.1", "job"),
        labels={"slo": "schedule-lag"},
    ),
    Objective(
        alert="PulseDeliveryLagBudgetBurn",
        record="job:pulse_monitor_delivery_lag_slow:ratio_rate{window}",
        by="job",
        target=0.99,
        what="log entries delivered to Monitor subscribers",
        bad="delivered more than 500 ms after they were ingested",
        ratio=_slow_share("pulse_monitor_delivery_lag_seconds", 'job="pulse"', "0.5", "job"),
        labels={"slo": "delivery-lag"},
    ),
)


class Literal(str):
    """A multi-line PromQL string, written as a YAML block."""


def _literal(dumper: yaml.Dumper, value: Literal) -> yaml.Node:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")


yaml.add_representer(Literal, _literal)


def recording_rules(slo: Objective) -> list[dict]:
    return [
        {
            "record": slo.record.format(window=window),
            "expr": Literal(slo.ratio.replace("{w}", window) + "\n"),
        }
        for window in WINDOWS
    ]


def _burn_expr(slo: Objective, burn: Burn) -> str:
    threshold = f"({burn.factor:g} * {slo.budget:g})"
    long_ = slo.record.format(window=burn.long)
    short = slo.record.format(window=burn.short)
    return f"  {long_} > {threshold}\nand\n  {short} > {threshold}"


def burn_alert(slo: Objective, pair: tuple[Burn, Burn]) -> dict:
    first, second = pair
    expr = f"(\n{_burn_expr(slo, first)}\n)\nor\n(\n{_burn_expr(slo, second)}\n)\n"
    expr = expr.replace("\nand\n", "\n  and\n")
    scope = " on {{ $labels.rpc_method }}" if "rpc_method" in slo.by else ""
    severity = first.severity
    budget_pct = f"{slo.budget * 100:g}%"
    speed = "fast" if severity == "critical" else "slowly"
    consumed = (
        "2% of the 30-day budget in 1 hour or 5% in 6 hours"
        if severity == "critical"
        else "10% of the 30-day budget in 3 days or all of it within 30 days"
    )
    return {
        "alert": slo.alert,
        "expr": Literal(expr),
        "for": FOR[severity],
        "labels": {"severity": severity, "service": "pulse", **slo.labels},
        "annotations": {
            "summary": f"Pulse is burning its {slo.labels['slo']} error budget {speed}{scope}.",
            "description": (
                f"{{{{ $value | humanizePercentage }}}} of {slo.what}{scope} were {slo.bad} over "
                f"the long window; the objective allows {budget_pct}. At this rate Pulse spends "
                f"{consumed}."
            ),
            "runbook_url": f"{RUNBOOKS}/{slo.alert}.md",
            "dashboard": "pulse-slo",
        },
    }


def document() -> dict:
    # One group per objective: rules of a group run in order, so the alerts always read the
    # ratios recorded in the same evaluation.
    groups = []
    for slo in OBJECTIVES:
        alerts = [burn_alert(slo, (BURNS[0], BURNS[1])), burn_alert(slo, (BURNS[2], BURNS[3]))]
        groups.append(
            {"name": f"pulse-slo-{slo.labels['slo']}", "rules": recording_rules(slo) + alerts}
        )
    return {"groups": groups}


def render() -> str:
    header = "# Generated by alerts/slo.py from Pulse's objectives: edit that, run `make alerts`.\n"
    return header + yaml.dump(document(), sort_keys=False, width=100)


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if OUTPUT.read_text() != text:
            print(f"{OUTPUT.relative_to(HERE.parent)} is out of date: run 'make alerts'")
            return 1
        return 0
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT.relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
