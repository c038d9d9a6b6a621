"""Alerting end to end: a fault injected through Pulse's admin port pages the pager receiver
through the real Prometheus and Alertmanager, with the rules and routing of alerts/, and the fix
resolves the page."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Any

import grpc
import pytest
from conftest import LivePulse, WebhookReceiver, eventually, http_json
from stack import Stack

from pulse.v1 import metrics_pb2, metrics_pb2_grpc

pytestmark = pytest.mark.e2e

FAULTED = "pulse.v1.MetricsService/ListMetricTypes"
ALERT = "PulseAvailabilityBudgetBurn"
RUNBOOK_SUFFIX = f"/alerts/runbooks/{ALERT}.md"


def _notified(webhooks: WebhookReceiver, receiver: str, status: str) -> list[tuple[float, dict]]:
    return [
        (note.received, alert)
        for note in webhooks.received(receiver)
        for alert in note.body.get("alerts", [])
        if alert["labels"].get("alertname") == ALERT
        and alert["labels"].get("rpc_method") == FAULTED
        and alert["status"] == status
    ]


def _query(stack: Stack, promql: str) -> list[dict[str, Any]]:
    return http_json(stack.url("prometheus") + "/api/v1/query", {"query": promql})["data"]["result"]


async def _healthy_calls(address: str, calls: int, concurrency: int = 32) -> None:
    """Successful ListMetricTypes calls, as the method's regular traffic would make them."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub = metrics_pb2_grpc.MetricsServiceStub(channel)
        remaining = iter(range(calls))

        async def worker() -> None:
            for _ in remaining:
                await stub.ListMetricTypes(metrics_pb2.ListMetricTypesRequest(), timeout=10)

        await asyncio.gather(*(worker() for _ in range(concurrency)))


def test_fault_pages_the_pager_and_the_fix_resolves_it(
    stack: Stack,
    pulse_live: LivePulse,
    webhooks: WebhookReceiver,
    capsys: pytest.CaptureFixture[str],
) -> None:
    eventually(
        lambda: _query(
            stack, f'rpc_method:pulse_rpc_errors:ratio_rate5m{{rpc_method="{FAULTED}"}}'
        ),
        f"the recorded error ratio of {FAULTED}",
        timeout_s=120,
    )
    assert not _notified(webhooks, "pager", "firing"), "paged before any fault"

    fault_on = time.time()
    http_json(
        pulse_live.admin_url + "/faults", method="PUT", body={f"/{FAULTED}": {"error_rate": 0.5}}
    )
    try:
        paged_at, page = eventually(
            lambda: next(iter(_notified(webhooks, "pager", "firing")), None),
            f"{ALERT} for {FAULTED} delivered to the pager receiver",
            timeout_s=360,
        )
    finally:
        http_json(pulse_live.admin_url + "/faults", method="DELETE")
    fixed = time.time()

    assert page["labels"] == {
        "alertname": ALERT,
        "severity": "critical",
        "service": "pulse",
        "slo": "availability",
        "job": "pulse",
        "rpc_method": FAULTED,
    }
    assert page["annotations"]["runbook_url"].endswith(RUNBOOK_SUFFIX)
    assert FAULTED in page["annotations"]["summary"]
    assert page["annotations"]["dashboard"] == "pulse-slo"
    chat_pages = [
        alert
        for note in webhooks.received("chat")
        for alert in note.body.get("alerts", [])
        if alert["labels"].get("alertname") == ALERT and alert["labels"]["severity"] == "critical"
    ]
    assert not chat_pages, "a critical alert reached the chat receiver"

    # With the fault gone, the method's traffic dilutes the errors in the 5m and 30m windows
    # until both fall under the page's thresholds; a small demo load would take 30 minutes.
    def resolved() -> Any:
        found = _notified(webhooks, "pager", "resolved")
        if not found:
            asyncio.run(_healthy_calls(pulse_live.grpc_address, 1000))
        return next(iter(found), None)

    resolved_at, _ = eventually(resolved, f"the resolved {ALERT} at the pager", 480, every_s=1)
    with capsys.disabled():
        print(
            f"\n[alerts] fault -> page {paged_at - fault_on:.0f}s, "
            f"fix -> resolved {resolved_at - fixed:.0f}s"
        )


def test_watchdog_reaches_the_dead_mans_switch(stack: Stack, webhooks: WebhookReceiver) -> None:
    def watchdog() -> bool:
        return any(
            alert["labels"].get("alertname") == "Watchdog"
            for note in webhooks.received("deadmansswitch")
            for alert in note.body.get("alerts", [])
        )

    eventually(watchdog, "Watchdog at the deadmansswitch receiver", timeout_s=120)
    assert not any(
        alert["labels"].get("alertname") == "Watchdog"
        for receiver in ("pager", "chat", "ticket")
        for note in webhooks.received(receiver)
        for alert in note.body.get("alerts", [])
    )


def _post_alerts(stack: Stack, alerts: list[dict[str, str]]) -> None:
    ends = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=2)).isoformat()
    http_json(
        stack.url("alertmanager") + "/api/v2/alerts",
        method="POST",
        body=[{"labels": {**labels, "probe": "inhibition"}, "endsAt": ends} for labels in alerts],
    )


def test_alertmanager_inhibits_what_a_bigger_alert_explains(stack: Stack) -> None:
    probe = {"alertname": "InhibitionProbe", "service": "probe"}
    _post_alerts(
        stack,
        [
            {**probe, "severity": "critical"},
            {**probe, "severity": "warning"},
            {**probe, "alertname": "OtherProbe", "severity": "warning"},
            {"alertname": "OtelcolDown", "severity": "critical", "service": "otelcol"},
            {
                "alertname": "PulseTelemetryAbsent",
                "severity": "critical",
                "service": "pulse",
            },
            {
                "alertname": "LogsBackendDown",
                "severity": "warning",
                "service": "logs-backend",
                "backend": "logs",
            },
            {
                "alertname": "OtelcolExporterQueueNearlyFull",
                "severity": "warning",
                "service": "otelcol",
                "backend": "logs",
            },
            {
                "alertname": "OtelcolExporterQueueNearlyFull",
                "severity": "warning",
                "service": "otelcol",
                "backend": "jaeger",
            },
        ],
    )

    def states() -> dict[tuple[str, str], str] | None:
        alerts = http_json(stack.url("alertmanager") + "/api/v2/alerts")
        found = {
            (
                a["labels"]["alertname"],
                a["labels"].get("severity", "") + a["labels"].get("backend", ""),
            ): a["status"]["state"]
            for a in alerts
            if a["labels"].get("probe") == "inhibition"
        }
        return found if ("OtelcolExporterQueueNearlyFull", "warningjaeger") in found else None

    found = eventually(states, "probe alerts in Alertmanager", timeout_s=30, every_s=1)
    assert found[("InhibitionProbe", "critical")] == "active"
    assert found[("InhibitionProbe", "warning")] == "suppressed"
    assert found[("OtherProbe", "warning")] == "active"
    assert found[("OtelcolDown", "critical")] == "active"
    assert found[("PulseTelemetryAbsent", "critical")] == "suppressed"
    assert found[("LogsBackendDown", "warninglogs")] == "active"
    assert found[("OtelcolExporterQueueNearlyFull", "warninglogs")] == "suppressed"
    assert found[("OtelcolExporterQueueNearlyFull", "warningjaeger")] == "active"
