"""The end-to-end tests run in the live session of tests/live_stack.py; what they share besides."""

from __future__ import annotations

import urllib.request

from live_stack import REPO, LivePulse, WebhookReceiver, http_json, logsql
from stack import Stack

from helpers import eventually

__all__ = [
    "REPO",
    "LivePulse",
    "WebhookReceiver",
    "eventually",
    "http_json",
    "logsql",
    "rows_dropped",
]


def rows_dropped(stack: Stack) -> dict[str, float]:
    """VictoriaLogs' vl_rows_dropped_total by reason, read from its own /metrics: records it
    answered 200 for and did not store."""
    with urllib.request.urlopen(stack.url("victorialogs") + "/metrics", timeout=10) as response:
        lines = response.read().decode().splitlines()
    dropped = {}
    for line in lines:
        if line.startswith("vl_rows_dropped_total{"):
            series, value = line.rsplit(" ", 1)
            dropped[series.removeprefix("vl_rows_dropped_total")] = float(value)
    return dropped
