"""Where to look while the local stack runs: each URL with what it shows, and ready links to an
RPC latency graph, the firing alerts, Pulse's logs and a trace. `make run` prints them and the
browser tests (tests/browser) open the same links. Standard library only."""

from __future__ import annotations

import json
import textwrap
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from stack import Stack

# p99 latency of Pulse's unary calls per method, as the latency SLO counts them.
LATENCY_QUERY = (
    "histogram_quantile(0.99, sum by (le, rpc_method) "
    '(rate(rpc_server_call_duration_seconds_bucket{job="pulse", pulse_rpc_type="unary"}[1m])))'
)
PULSE_LOGS_QUERY = '{service.name="pulse"}'
RANGE = "15m"
RELATIVE_TIME = "last_15_minutes"  # VictoriaLogs' UI's name for the same range


def latency_graph(stack: Stack) -> str:
    params = {"g0.expr": LATENCY_QUERY, "g0.tab": "graph", "g0.range_input": RANGE}
    return f"{stack.url('prometheus')}/query?{urllib.parse.urlencode(params)}"


def firing_alerts(stack: Stack) -> str:
    return f"{stack.url('alertmanager')}/#/alerts?silenced=false&inhibited=false&active=true"


def logs_ui(stack: Stack) -> str:
    return f"{stack.url('victorialogs')}/select/vmui/"


def pulse_logs(stack: Stack, query: str = PULSE_LOGS_QUERY) -> str:
    """VictoriaLogs' UI on ``query``: each record's message and trace id."""
    params = {"query": query, "g0.relative_time": RELATIVE_TIME, "displayFields": "_msg,trace_id"}
    return f"{logs_ui(stack)}#/?{urllib.parse.urlencode(params)}"


def recent_traces(stack: Stack, limit: int = 20) -> str:
    params = {"service": "pulse", "limit": limit, "lookback": "1h"}
    return f"{stack.url('jaeger')}/api/traces?{urllib.parse.urlencode(params)}"


def trace(stack: Stack, trace_id: str) -> str:
    return f"{stack.url('jaeger')}/api/traces/{trace_id}"


def latest_trace_id(stack: Stack, timeout_s: float) -> str | None:
    """The id of one of Pulse's recent traces in Jaeger, waiting up to ``timeout_s`` for one."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(recent_traces(stack, limit=1), timeout=5) as response:
                traces = json.load(response).get("data") or []
            if traces:
                return str(traces[0]["traceID"])
        except (urllib.error.URLError, OSError, ValueError, KeyError):
            pass  # Jaeger not answering yet is the same as no trace yet
        if time.monotonic() >= deadline:
            return None
        time.sleep(1)


@dataclass(frozen=True)
class PulseAddress:
    grpc: str  # host:port
    admin: str  # http://host:port


def guide(stack: Stack, pulse: PulseAddress, trace_id: str | None) -> str:
    trace_link = (
        trace(stack, trace_id)
        if trace_id
        else f"{trace(stack, '<trace id>')} (ids are in the logs' trace_id field)"
    )
    entries = [
        (
            "Pulse gRPC",
            pulse.grpc,
            "The service itself; the load generator calls every method.",
            [("try", f".venv/bin/pulse metrics --target {pulse.grpc} --type cpu_usage")],
        ),
        (
            "Pulse admin",
            f"{pulse.admin}/metrics",
            "Pulse's own Prometheus metrics; /readyz says whether it serves, /faults injects "
            "errors and latency (see the README).",
            [],
        ),
        (
            "Prometheus",
            stack.url("prometheus"),
            "Prometheus' UI: query and graph every metric, the alert rules and whether each "
            "fires (Alerts), the scrape targets (Status).",
            [("p99 latency of the unary RPCs, per method", latency_graph(stack))],
        ),
        (
            "Alertmanager",
            stack.url("alertmanager"),
            "The alerts Prometheus sent, grouped as they are routed; on a quiet stack only "
            "Watchdog fires.",
            [("firing alerts", firing_alerts(stack))],
        ),
        (
            "Alert webhooks",
            stack.url("webhooks"),
            "The notifications Alertmanager delivered to the pager, chat, ticket and dead man's "
            "switch receivers, newest first (JSON).",
            [],
        ),
        (
            "Logs",
            logs_ui(stack),
            "VictoriaLogs' UI: search every log record with LogsQL; Pulse's carry trace_id.",
            [("Pulse's logs", pulse_logs(stack))],
        ),
        (
            "Jaeger API",
            f"{stack.url('jaeger')}/api/services",
            "Traces as JSON: Jaeger's UI is not in the local stack (no package here builds its "
            "assets).",
            [("Pulse's recent traces", recent_traces(stack)), ("a trace by id", trace_link)],
        ),
        (
            "Collector",
            stack.url("otelcol_metrics"),
            f"The OpenTelemetry Collector's own metrics; OTLP in on {stack.url('otlp_grpc')}.",
            [],
        ),
    ]
    indent = " " * 18
    lines = []
    for name, url, what, links in entries:
        lines.append(f"  {name:15} {url}")
        lines.extend(textwrap.wrap(what, 100, initial_indent=indent, subsequent_indent=indent))
        lines.extend(f"{indent}→ {label}: {link}" for label, link in links)
    lines.append("")
    lines.append(
        f"Metrics, logs and alerts stay in {stack.dir} between runs: `make stack-reset` "
        "starts the next one empty."
    )
    return "\n".join(lines)
