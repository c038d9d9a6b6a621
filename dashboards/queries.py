"""PromQL shared by Pulse's dashboards: selectors narrowed by the template variables, Grafana's
rate interval, quantiles with exemplars, and the server-error ratio of the availability
objective."""

from __future__ import annotations

from grafana_foundation_sdk.builders import prometheus

from alerts.config import SELECTORS, SERVER_ERRORS
from dashboards.common import prom

__all__ = [
    "CALLS",
    "COUNT",
    "PULSE",
    "RATE",
    "ZERO",
    "quantiles",
    "server_error_ratio",
    "server_errors",
]

RATE = "[$__rate_interval]"
# Pulse's series narrowed to the selected instances, and its calls to the selected methods.
PULSE = f'{SELECTORS.pulse}, instance=~"$instance"'
CALLS = f'{PULSE}, rpc_method=~"$method"'
COUNT = "rpc_server_call_duration_seconds_count"
# Counters that move only on failure do not exist until the first one; zero is the truth then.
ZERO = " or vector(0)"


def quantiles(metric: str, selector: str, by: str = "") -> list[prometheus.Dataquery]:
    """p50, p95 and p99 of a histogram, with exemplars (each dot opens its trace)."""
    group = f"le, {by}" if by else "le"
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


def server_errors(selector: str = CALLS) -> str:
    """Calls per second that ended with a server-side error, as the availability objective
    counts them (the status decision of alerts/config.py)."""
    return f"sum({SERVER_ERRORS.rate(COUNT, selector, '$__rate_interval')}){ZERO}"


def server_error_ratio(selector: str = CALLS) -> str:
    return f"({server_errors(selector)}) / sum(rate({COUNT}{{{selector}}}{RATE}))"
