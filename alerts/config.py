"""Pulse's monitoring config: the one place for the selectors, status codes, objectives, burn
factors, thresholds and runbook links that the alert rules (alerts/areas/) and the dashboards
(dashboards/) are built from.

Thresholds that depend on what the Helm chart grants a pod are derived from the chart's
values.yaml when the rules and dashboards are generated, so raising a limit there moves the
alert with it (and `make alerts-check` / `make dashboards-check` fail until they are
regenerated). A key missing from the values stops generation with its name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "BURNS",
    "CHART_VALUES",
    "DASHBOARDS",
    "OBJECTIVES",
    "RPC_TYPES",
    "SELECTORS",
    "SERVER_ERRORS",
    "Burn",
    "ChartLimits",
    "Config",
    "ConfigError",
    "Objective",
    "Selectors",
    "ServerErrors",
    "Thresholds",
    "chart_limits",
    "load",
    "objective",
    "parse_quantity",
    "runbook_url",
]

REPO = Path(__file__).resolve().parents[1]
CHART_VALUES = REPO / "deploy" / "helm" / "pulse" / "values.yaml"
RUNBOOK_URL = "https://github.com/pulse-observability/pulse/blob/main/alerts/runbooks/{alert}.md"


class ConfigError(ValueError):
    """A value the monitoring config needs is missing or malformed; the message names it."""


def runbook_url(alert: str) -> str:
    """Where the runbook of `alert` lives (alerts/runbooks/<alert>.md in the repository)."""
    return RUNBOOK_URL.format(alert=alert)


@dataclass(frozen=True)
class Selectors:
    """Label matchers of each scrape job, as Prometheus names them in the stack and the chart."""

    pulse: str = 'job="pulse"'
    collector: str = 'job="otelcol"'
    jaeger: str = 'job="jaeger"'
    # Either logs backend: Loki (the chart's default) or VictoriaLogs (the local stack's).
    logs_backends: str = 'job=~"loki|victorialogs"'
    victorialogs: str = 'job="victorialogs"'
    # Every backend whose `up` the pipeline dashboard shows.
    backends: str = 'job=~"prometheus|loki|victorialogs|jaeger|alertmanager|otelcol"'
    # Jobs with a down alert of their own, left out of TargetDown.
    own_down_alerts: str = 'job!~"otelcol|loki|victorialogs|jaeger"'


SELECTORS = Selectors()

# Values of `pulse_rpc_type` on rpc_server_call_duration_seconds_*; each method has exactly one.
RPC_TYPES = ("unary", "client_stream", "server_stream", "bidi_stream")


@dataclass(frozen=True)
class ServerErrors:
    """Which gRPC status codes count against the availability objective.

    CANCELLED never does: the client gave up. DEADLINE_EXCEEDED does where the server owed one
    answer in time (unary and client-streaming calls), not on server-streaming and bidirectional
    streams, where a deadline is how a client bounds the life of a stream.
    """

    always: tuple[str, ...] = ("UNKNOWN", "INTERNAL", "UNAVAILABLE", "DATA_LOSS")
    single_answer_only: tuple[str, ...] = ("DEADLINE_EXCEEDED",)
    single_answer_types: tuple[str, ...] = ("unary", "client_stream")
    stream_types: tuple[str, ...] = ("server_stream", "bidi_stream")

    def __post_init__(self) -> None:
        shapes = self.single_answer_types + self.stream_types
        if sorted(shapes) != sorted(RPC_TYPES):
            raise ConfigError(f"server errors must split the RPC types {RPC_TYPES}, got {shapes}")

    def selectors(self, base: str) -> tuple[str, str]:
        """The two label selectors of bad events over `base`, one per set of RPC shapes. The
        shapes split the methods into disjoint sets, so the `or` of the two is their union."""
        single = "|".join(self.always + self.single_answer_only)
        stream = "|".join(self.always)
        return (
            f'{base}, pulse_rpc_type=~"{"|".join(self.single_answer_types)}", '
            f'rpc_response_status_code=~"{single}"',
            f'{base}, pulse_rpc_type=~"{"|".join(self.stream_types)}", '
            f'rpc_response_status_code=~"{stream}"',
        )

    def rate(self, metric: str, base: str, window: str, join: str = " or ") -> str:
        """`rate()` of the bad events of `metric` over `window`: the `or` of both selectors."""
        single, stream = self.selectors(base)
        return f"rate({metric}{{{single}}}[{window}]){join}rate({metric}{{{stream}}}[{window}])"

    def describe(self) -> str:
        """The codes in words, for descriptions and panel texts."""
        return (
            f"{', '.join(self.always)}; {', '.join(self.single_answer_only)} on unary and "
            "client-streaming calls"
        )


SERVER_ERRORS = ServerErrors()


@dataclass(frozen=True)
class Burn:
    """One window pair of the multi-window multi-burn-rate alert (SRE Workbook, chapter 5)."""

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
# Every window a ratio is recorded for: the burn windows and the 30-day budget period.
SLO_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d")
BUDGET_PERIOD = "30d"
# The short window already stops a burn that is over; `for` only rides out a single bad scrape.
BURN_FOR = {"critical": "2m", "warning": "15m"}


@dataclass(frozen=True)
class Objective:
    """A service level objective: what share of events must be good over 30 days."""

    alert: str
    slo: str  # the `slo` label of its alerts
    record: str  # level:metric:operations, with {window} in the operations part
    by: str  # the labels the ratio keeps
    target: float
    what: str  # completes "... of {what} ..."
    latency_s: float | None = None  # for latency objectives: the bucket boundary that is "fast"

    @property
    def budget(self) -> float:
        return round(1 - self.target, 6)

    def recorded(self, window: str) -> str:
        return self.record.format(window=window)


OBJECTIVES = (
    Objective(
        alert="PulseAvailabilityBudgetBurn",
        slo="availability",
        record="rpc_method:pulse_rpc_errors:ratio_rate{window}",
        by="job, rpc_method",
        target=0.999,
        what="calls",
    ),
    Objective(
        alert="PulseUnaryLatencyBudgetBurn",
        slo="unary-latency",
        record="rpc_method:pulse_rpc_unary_slow:ratio_rate{window}",
        by="job, rpc_method",
        target=0.99,
        what="unary calls",
        latency_s=0.25,
    ),
    Objective(
        alert="PulseScheduleLagBudgetBurn",
        slo="schedule-lag",
        record="job:pulse_metrics_schedule_lag_slow:ratio_rate{window}",
        by="job",
        target=0.99,
        what="StreamMetrics samples",
        latency_s=0.1,
    ),
    Objective(
        alert="PulseDeliveryLagBudgetBurn",
        slo="delivery-lag",
        record="job:pulse_monitor_delivery_lag_slow:ratio_rate{window}",
        by="job",
        target=0.99,
        what="log entries delivered to Monitor subscribers",
        latency_s=0.5,
    ),
)


def objective(slo: str) -> Objective:
    """The objective whose `slo` label is `slo`."""
    for candidate in OBJECTIVES:
        if candidate.slo == slo:
            return candidate
    raise ConfigError(f"no objective {slo!r}; known: {[o.slo for o in OBJECTIVES]}")


# uid of each dashboard, by what it shows; alerts name the one to open.
DASHBOARDS = {
    "overview": "pulse-overview",
    "streams": "pulse-streams",
    "logs": "pulse-logs",
    "sensors": "pulse-sensors",
    "slo": "pulse-slo",
    "pipeline": "pulse-pipeline",
    "shared": "pulse-shared-state",
}

_QUANTITY = re.compile(r"(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?")
_UNITS = {
    None: 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}


def parse_quantity(value: Any, key: str) -> int:
    """Bytes of a Kubernetes memory quantity (`384Mi`, `1G`, `536870912`)."""
    match = _QUANTITY.fullmatch(str(value))
    if not match:
        raise ConfigError(
            f"{key}: {value!r} is not a memory quantity (a number with Ki, Mi, Gi, Ti, k, M, G "
            "or T, or plain bytes)"
        )
    number, unit = match.groups()
    return int(float(number) * _UNITS[unit])


def _lookup(values: dict[str, Any], key: str) -> Any:
    node: Any = values
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise ConfigError(f"{key} is missing from {CHART_VALUES.relative_to(REPO)}")
        node = node[part]
    return node


@dataclass(frozen=True)
class ChartLimits:
    """What the chart's values grant the pods whose thresholds depend on it."""

    pulse_memory_bytes: int
    collector_memory_bytes: int


PULSE_MEMORY_KEY = "pulse.resources.limits.memory"
COLLECTOR_MEMORY_KEY = "collector.resources.limits.memory"


def chart_limits(values_path: Path = CHART_VALUES) -> ChartLimits:
    values = yaml.safe_load(values_path.read_text())
    return ChartLimits(
        pulse_memory_bytes=parse_quantity(_lookup(values, PULSE_MEMORY_KEY), PULSE_MEMORY_KEY),
        collector_memory_bytes=parse_quantity(
            _lookup(values, COLLECTOR_MEMORY_KEY), COLLECTOR_MEMORY_KEY
        ),
    )


@dataclass(frozen=True)
class Thresholds:
    """Every number an alert compares against, and the dashboards draw as a line."""

    limits: ChartLimits
    # PulseMemoryHigh: share of the chart's memory limit; the kernel kills the pod at the limit.
    memory_fraction: float = 0.8
    # Shares of events over 10 minutes (symptom alerts).
    monitor_dropped_ratio: float = 0.01
    ingest_rate_limited_ratio: float = 0.1
    ingest_rejected_ratio: float = 0.05
    metrics_skipped_ratio: float = 0.01
    sensor_rejected_ratio: float = 0.05
    # Accepted entries the forwarder gave up on: they never reach the logs backend.
    forward_lost_ratio: float = 0.001
    # Shared state of several replicas: failed calls over all calls to the bus or the database
    # over 10 minutes, batches a replica has not read yet, the database's p99 call duration.
    bus_publish_error_ratio: float = 0.01
    bus_consumer_pending_batches: int = 1000
    database_error_ratio: float = 0.01
    database_p99_s: float = 0.25
    # Calls refused per second, per reason, before on-call hears of it.
    auth_failures_per_s: float = 1
    # Collector sending queue size over capacity.
    exporter_queue_ratio: float = 0.8
    # Failed notifications over sent, Prometheus -> Alertmanager and Alertmanager -> receivers.
    notifications_failed_ratio: float = 0.01
    # How long Prometheus may receive nothing from Pulse before PulseTelemetryAbsent (plus `for`).
    telemetry_absent_window: str = "5m"

    @property
    def pulse_memory_high_bytes(self) -> int:
        return int(self.limits.pulse_memory_bytes * self.memory_fraction)


@dataclass(frozen=True)
class Config:
    selectors: Selectors
    server_errors: ServerErrors
    thresholds: Thresholds


def load(values_path: Path = CHART_VALUES) -> Config:
    """The config, with the chart-derived thresholds read from `values_path`."""
    return Config(SELECTORS, SERVER_ERRORS, Thresholds(chart_limits(values_path)))
