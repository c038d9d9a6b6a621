"""Pulse / Log pipeline: log ingest by outcome, buffer use, forwarding to the logs backend, and
Pulse's own logs linked to traces. One definition for every logs backend: only the logs
datasource and the query language of the last two panels differ (dashboards/logs_backends.py)."""

from __future__ import annotations

from grafana_foundation_sdk.models import dashboard as model

from alerts.config import DASHBOARDS, Config
from dashboards import variables
from dashboards.common import Query, Row, assemble, logs, prom, stat, timeseries
from dashboards.logs_backends import LogsBackend
from dashboards.queries import PULSE, RATE, ZERO

__all__ = ["dashboard"]

UID = DASHBOARDS["logs"]


def _by(label: str, metric: str, *, fallback: bool = False) -> list[Query]:
    zero = ZERO if fallback else ""
    return [prom(f"sum by ({label}) (rate({metric}{{{PULSE}}}{RATE})){zero}", f"{{{{{label}}}}}")]


def _ingest(backend: LogsBackend) -> Row:
    return Row(
        "Ingest",
        [
            timeseries(
                "Entries by outcome",
                "Entries per second that agents sent, by outcome: accepted, rate_limited, "
                "rejected.",
                _by("pulse_ingest_outcome", "pulse_ingest_entries_total"),
                "cps",
            ),
            timeseries(
                "Redacted and truncated",
                "Accepted entries per second whose message was redacted (a secret pattern "
                "matched) or truncated (too long).",
                _by("pulse_ingest_modification", "pulse_ingest_modifications_total", fallback=True),
                "cps",
            ),
            timeseries(
                "Rate limiting by scope",
                "Entries refused per second by the global, per-source or per-task rate limit.",
                _by("pulse_ratelimit_scope", "pulse_ingest_rate_limited_total", fallback=True),
                "cps",
            ),
            timeseries(
                "Batches by outcome",
                "Batches per second: applied, duplicate (a retried batch id, applied once) and "
                "invalid.",
                _by("pulse_ingest_batch_outcome", "pulse_ingest_batches_total"),
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
                f"Log lines per minute that Pulse's own processes wrote, from {backend.label} "
                f"({backend.language}).",
                [backend.lines_per_minute(backend.variable)],
                "short",
            ),
        ],
    )


def _forwarding() -> Row:
    return Row(
        "Forwarding to the logs backend",
        [
            timeseries(
                "Forwarded entries by outcome",
                "Accepted entries per second by what the forwarder did with them: forwarded, or "
                "lost (queue_full, export_failed, retries_exhausted, rejected, shutdown).",
                _by("pulse_log_forward_outcome", "pulse_log_forward_entries_total"),
                "cps",
                width=8,
            ),
            timeseries(
                "Export retries",
                "Exports per second retried after a failure, with backoff.",
                [prom(f"sum(rate(pulse_log_forward_retries_total{{{PULSE}}}{RATE})){ZERO}")],
                "ops",
                width=8,
            ),
            stat(
                "Forward queue use",
                "Share of the forward queue's bytes in use (ingest.forward_queue_bytes); full, "
                "it drops batches as queue_full.",
                [
                    prom(
                        f"max(pulse_log_forward_queue_size_bytes{{{PULSE}}} / "
                        f"pulse_log_forward_queue_limit_bytes{{{PULSE}}})"
                    )
                ],
                "percentunit",
                width=8,
                height=8,
            ),
        ],
    )


def _records(backend: LogsBackend) -> Row:
    return Row(
        "Logs",
        [
            logs(
                "Pulse logs",
                f"Pulse's logs from {backend.label}, newest first. The trace_id field of a line "
                "links to its trace in Jaeger.",
                [backend.records(backend.variable)],
            )
        ],
    )


def dashboard(config: Config, backend: LogsBackend) -> model.Dashboard:
    logs_source = variables.datasource("logs", backend.plugin, backend.uid, backend.label)
    return assemble(
        UID,
        "Log ingest by outcome, buffer use, and Pulse's logs linked to traces.",
        [_ingest(backend), _forwarding(), _records(backend)],
        [variables.prometheus(), logs_source, variables.instance()],
        (
            "PulseIngestRateLimited",
            "PulseIngestRejected",
            "PulseLogForwardingLost",
            "LogsBackendDown",
        ),
    )
