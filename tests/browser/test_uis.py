"""What a person sees: the links `make run` prints (deploy/local/guide.py), opened in headless
Chromium against the live stack under load. Each page loads without console errors and shows
the data the stack holds."""

from __future__ import annotations

import re
import time

import guide
import pytest
from browser.chromium import Tab
from live_stack import LivePulse, http_json, logsql
from playwright.sync_api import expect
from stack import Stack

from helpers import eventually

pytestmark = pytest.mark.e2e

TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
# How long a page may take to show what the stack already holds.
PAGE_TIMEOUT_MS = 30_000


def _latency_points(stack: Stack) -> bool:
    """Whether the latency query has a series of at least two points to draw a line through."""
    now = time.time()
    params = {"query": guide.LATENCY_QUERY, "start": now - 120, "end": now, "step": 5}
    reply = http_json(stack.url("prometheus") + "/api/v1/query_range", params)
    return any(len(series["values"]) >= 2 for series in reply["data"]["result"])


def _drawn_pixels(tab: Tab, color: str) -> int:
    """Pixels of the graph's canvas in the ``color`` (CSS rgb()) of a series' legend marker."""
    return tab.page.evaluate(
        """(color) => {
            const [r, g, b] = color.match(/\\d+/g).map(Number);
            const canvas = document.querySelector(".uplot canvas");
            const { width, height } = canvas;
            const data = canvas.getContext("2d").getImageData(0, 0, width, height).data;
            let count = 0;
            for (let i = 0; i < data.length; i += 4) {
                const off = Math.abs(data[i] - r) + Math.abs(data[i + 1] - g)
                    + Math.abs(data[i + 2] - b);
                if (off < 30 && data[i + 3] > 200) count++;
            }
            return count;
        }""",
        color,
    )


def test_prometheus_graphs_rpc_latency(stack: Stack, pulse_live: LivePulse, tab: Tab) -> None:
    eventually(lambda: _latency_points(stack), "two points of unary RPC latency in Prometheus")
    page = tab.open(guide.latency_graph(stack))
    legend = page.locator(".u-legend .u-series")
    expect(legend.first).to_be_visible(timeout=PAGE_TIMEOUT_MS)
    expect(legend.first.locator(".u-label")).to_contain_text('rpc_method="pulse.v1.')
    expect(page.get_by_text("Empty query result")).to_have_count(0)
    # The series are drawn (one may hide another): the canvas holds pixels of their colours.
    colors = legend.locator(".u-marker").evaluate_all(
        "markers => markers.map(m => getComputedStyle(m).backgroundColor)"
    )
    drawn = sum(_drawn_pixels(tab, color) for color in colors)
    assert drawn > 0, f"no pixel of the series' colours {colors} on the graph"
    assert tab.errors == []


def test_alertmanager_lists_the_watchdog(stack: Stack, tab: Tab) -> None:
    page = tab.open(guide.firing_alerts(stack))
    expect(page.get_by_text('alertname="Watchdog"')).to_be_visible(timeout=PAGE_TIMEOUT_MS)
    assert tab.errors == []


def test_logs_ui_shows_pulse_log_lines_with_trace_ids(
    stack: Stack, pulse_live: LivePulse, tab: Tab
) -> None:
    eventually(lambda: logsql(stack, '{service.name="pulse"} trace_id:*', limit=1), "Pulse's logs")
    page = tab.open(guide.pulse_logs(stack))
    # A row shows a record's message and, when it has one, its trace id (Pulse's own start-up
    # lines have none).
    fields = ".vm-group-logs-row-content__sub-msg"
    row = page.locator(".vm-group-logs-row", has=page.locator(f"{fields}:nth-child(2)")).first
    expect(row).to_be_visible(timeout=PAGE_TIMEOUT_MS)
    message, trace_id = row.locator(fields).all_inner_texts()
    assert TRACE_ID.match(trace_id), f"a row shows {trace_id!r} where its trace id belongs"
    # The row is a record VictoriaLogs holds, with that message under that trace id.
    records = logsql(stack, f'{{service.name="pulse"}} trace_id:="{trace_id}"')
    assert message in {record["_msg"] for record in records}
    assert tab.errors == []


def test_jaeger_api_shows_a_trace_by_id(stack: Stack, pulse_live: LivePulse, tab: Tab) -> None:
    trace_id = guide.latest_trace_id(stack, timeout_s=60)
    assert trace_id, "no trace of Pulse in Jaeger"
    page = tab.open(guide.trace(stack, trace_id))
    trace = page.evaluate("JSON.parse(document.body.innerText)")["data"][0]
    assert trace["traceID"] == trace_id
    assert trace["spans"], trace
    assert tab.errors == []
