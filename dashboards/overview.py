"""Pulse / Service overview: rate, errors and duration of every RPC, unary and streaming apart,
and the process. What on-call opens first."""

from __future__ import annotations

from grafana_foundation_sdk.models import dashboard as model

from alerts.config import BURNS, DASHBOARDS, Config, objective
from dashboards import variables
from dashboards.common import Row, assemble, prom, stat, timeseries
from dashboards.queries import CALLS, COUNT, PULSE, RATE, ZERO, quantiles, server_error_ratio

__all__ = ["dashboard"]

UID = DASHBOARDS["overview"]
UNARY = f'{CALLS}, pulse_rpc_type="unary"'
STREAMS = f'{CALLS}, pulse_rpc_type!="unary"'
BY_METHOD_AND_CODE = "{{rpc_method}} {{rpc_response_status_code}}"


def _at_a_glance(config: Config) -> Row:
    availability, page = objective("availability"), BURNS[0]
    memory = config.thresholds
    limit_mib = memory.limits.pulse_memory_bytes / 2**20
    return Row(
        "At a glance",
        [
            stat(
                "Calls",
                "RPCs completed per second, all methods (streams count when they end).",
                [prom(f"sum(rate({COUNT}{{{CALLS}}}{RATE}))")],
                "reqps",
            ),
            stat(
                "Server error ratio",
                "Share of calls that ended with a server-side error "
                f"({config.server_errors.describe()}); the availability objective allows "
                f"{availability.budget * 100:g}%, the page fires at {page.factor:g} times that.",
                [prom(server_error_ratio())],
                "percentunit",
                thresholds=(
                    (availability.budget, "orange"),
                    (round(availability.budget * page.factor, 6), "red"),
                ),
            ),
            stat(
                "Active streams",
                "Streams open right now, all streaming methods.",
                [prom(f"sum(pulse_rpc_active_streams{{{CALLS}}})")],
                "short",
            ),
            stat(
                "Memory (largest instance)",
                "Resident memory of the largest Pulse instance; the chart limits Pulse to "
                f"{limit_mib:g} MiB and PulseMemoryHigh fires at "
                f"{memory.memory_fraction * 100:g}% of it.",
                [prom(f"max(process_memory_usage_bytes{{{PULSE}}})")],
                "bytes",
                thresholds=(
                    (memory.pulse_memory_high_bytes, "orange"),
                    (memory.limits.pulse_memory_bytes, "red"),
                ),
            ),
        ],
    )


def _unary() -> Row:
    latency = objective("unary-latency").latency_s
    return Row(
        "Unary calls",
        [
            timeseries(
                "Unary call rate by method and status",
                "Completed unary calls per second by method and gRPC status code.",
                [
                    prom(
                        "sum by (rpc_method, rpc_response_status_code) "
                        f"(rate({COUNT}{{{UNARY}}}{RATE}))",
                        BY_METHOD_AND_CODE,
                    )
                ],
                "reqps",
            ),
            timeseries(
                "Unary latency p50 / p95 / p99",
                "Latency of unary calls over all selected methods. Dots are exemplars: click one "
                "to open that call's trace in Jaeger. The dashed line is the "
                f"{latency * 1000:g} ms latency objective.",
                quantiles("rpc_server_call_duration_seconds", UNARY),
                "s",
                thresholds=((latency, "red"),),
            ),
            timeseries(
                "Unary p99 latency by method",
                "99th percentile latency per unary method.",
                [
                    prom(
                        "histogram_quantile(0.99, sum by (le, rpc_method) "
                        f"(rate(rpc_server_call_duration_seconds_bucket{{{UNARY}}}{RATE})))",
                        "{{rpc_method}}",
                        exemplar=True,
                    )
                ],
                "s",
                thresholds=((latency, "red"),),
            ),
            timeseries(
                "Errors by status code",
                "Calls per second that did not end OK, by method and status code; client "
                "faults (INVALID_ARGUMENT, UNAUTHENTICATED, …) and CANCELLED included. Zero "
                "when nothing failed.",
                [
                    prom(
                        f"sum by (rpc_method, rpc_response_status_code) (rate({COUNT}"
                        f'{{{CALLS}, rpc_response_status_code!="OK"}}{RATE})){ZERO}',
                        BY_METHOD_AND_CODE,
                    )
                ],
                "reqps",
            ),
        ],
    )


def _streams() -> Row:
    return Row(
        "Streaming calls",
        [
            timeseries(
                "Streams ended by method and status",
                "Streaming calls that ended per second, by method and status. A stream's "
                "duration is its lifetime, so no latency is shown for streams: see the Streams "
                "dashboard for schedule and delivery lag.",
                [
                    prom(
                        "sum by (rpc_method, rpc_response_status_code) "
                        f"(rate({COUNT}{{{STREAMS}}}{RATE}))",
                        BY_METHOD_AND_CODE,
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
    )


def _process(config: Config) -> Row:
    return Row(
        "Process",
        [
            timeseries(
                "CPU",
                "CPU time used per second by each Pulse process (1 = one core).",
                [
                    prom(
                        "sum by (instance) "
                        f"(rate(process_cpu_time_seconds_total{{{PULSE}}}{RATE}))",
                        "{{instance}}",
                    )
                ],
                "short",
            ),
            timeseries(
                "Memory",
                "Resident memory per Pulse process. The dashed line is where PulseMemoryHigh "
                "fires.",
                [prom(f"process_memory_usage_bytes{{{PULSE}}}", "{{instance}}")],
                "bytes",
                thresholds=((config.thresholds.pulse_memory_high_bytes, "orange"),),
            ),
        ],
    )


def dashboard(config: Config) -> model.Dashboard:
    return assemble(
        UID,
        "Rate, errors and duration of every Pulse RPC, unary and streaming apart.",
        [_at_a_glance(config), _unary(), _streams(), _process(config)],
        [variables.prometheus(), variables.instance(), variables.method()],
        ("PulseAvailabilityBudgetBurn", "PulseUnaryLatencyBudgetBurn", "PulseMemoryHigh"),
    )
