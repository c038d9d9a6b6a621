"""Every query of every dashboard panel, run against the real Prometheus and VictoriaLogs of the
stack while the load generator runs: accepted by the backend, and not empty. The logs dashboard
is its VictoriaLogs variant (the stack's logs backend); template variables are filled with the
values the backends report, as Grafana would."""

from __future__ import annotations

import json
import re
import time
import urllib.error
from typing import Any

import pytest
from conftest import REPO, LivePulse, eventually, http_json, logsql
from stack import Stack

pytestmark = pytest.mark.e2e

DASHBOARDS = REPO / "dashboards"
BOARDS = {
    p.relative_to(DASHBOARDS).as_posix(): json.loads(p.read_text())
    for p in [*sorted(DASHBOARDS.glob("*.json")), *sorted(DASHBOARDS.glob("victorialogs/*.json"))]
}
VICTORIALOGS = "victoriametrics-logs-datasource"
# Grafana's interval macros, as it would expand them for a 1-hour view.
MACROS = {"$__rate_interval": "1m", "$__interval": "15s", "$__auto": "1m", "$__range": "1h"}
# How far back the logs queries look, as a 15-minute view would.
LOGS_WINDOW_S = 900


def _label_values(stack: Stack, query: str) -> list[str]:
    match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query.strip())
    assert match, f"unsupported variable query {query!r}"
    selector, label = match.groups()
    reply = http_json(
        stack.url("prometheus") + f"/api/v1/label/{label}/values",
        {"match[]": selector, "start": time.time() - 3600},
    )
    return reply["data"]


def _regex_escape(value: str) -> str:
    """Escape a value for a PromQL regex matcher the way Grafana does: a doubled backslash,
    because the regex sits inside a PromQL string literal."""
    return re.sub(r"([.*+?^${}()|\[\]\\])", r"\\\\\1", value)


def _variables(stack: Stack, board: dict[str, Any]) -> dict[str, str]:
    values = {}
    for variable in board["templating"]["list"]:
        if variable["type"] != "query":
            continue
        found = _label_values(stack, variable["query"]["query"])
        assert found, f"{board['title']}: variable ${variable['name']} has no values"
        # "All" of a multi-value variable: Grafana writes the alternation of every value.
        values[variable["name"]] = "(" + "|".join(_regex_escape(v) for v in found) + ")"
    return values


def _expand(expr: str, variables: dict[str, str]) -> str:
    for macro, value in MACROS.items():
        expr = expr.replace(macro, value)
    for name, value in variables.items():
        expr = expr.replace(f"${{{name}}}", value).replace(f"${name}", value)
    assert "$" not in expr, f"unexpanded variable in {expr}"
    return expr


def _logs(stack: Stack, target: dict[str, Any], expr: str) -> list[Any]:
    """What the VictoriaLogs plugin asks for: records (/select/logsql/query) or counts per step
    (/select/logsql/stats_query_range)."""
    if target["queryType"] == "instant":
        return logsql(stack, expr, since_s=LOGS_WINDOW_S, limit=5)
    assert target["queryType"] == "statsRange", target
    now = time.time()
    reply = http_json(
        stack.url("victorialogs") + "/select/logsql/stats_query_range",
        {"query": expr, "start": int(now - LOGS_WINDOW_S), "end": int(now), "step": target["step"]},
    )
    assert reply["status"] == "success", reply
    return reply["data"]["result"]


def _run(stack: Stack, target: dict[str, Any], expr: str) -> list[Any]:
    """The result of one query; a rejected query raises with the backend's error."""
    kind = target["datasource"]["type"]
    try:
        if kind == "prometheus":
            reply = http_json(stack.url("prometheus") + "/api/v1/query", {"query": expr})
            assert reply["status"] == "success", reply
            return reply["data"]["result"]
        assert kind == VICTORIALOGS, f"no backend of type {kind} in the stack"
        return _logs(stack, target, expr)
    except urllib.error.HTTPError as error:
        raise AssertionError(f"rejected: {error.read().decode(errors='replace')}") from error


def _queries(stack: Stack) -> list[tuple[str, dict[str, Any], str]]:
    """(where, target, expanded query) for every target of every panel."""
    queries = []
    for board in BOARDS.values():
        variables = _variables(stack, board)
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                where = f"{board['title']} / {panel['title']} / {target['refId']}"
                queries.append((where, target, _expand(target["expr"], variables)))
    return queries


def test_the_stack_shows_the_victorialogs_variant() -> None:
    assert set(BOARDS) == {
        "pulse-overview.json",
        "pulse-streams.json",
        "pulse-sensors.json",
        "pulse-slo.json",
        "pulse-pipeline.json",
        "pulse-shared-state.json",
        "victorialogs/pulse-logs.json",
    }


def test_every_panel_shows_data_under_load(
    stack: Stack, pulse_live: LivePulse, pulse_shared: LivePulse
) -> None:
    """Both Pulses run the load generator: one on its embedded state, one on the shared
    engines, whose database and bus panels only it fills."""
    # Sensor ids, methods and recorded ratios appear once the load has run a little; variables
    # are resolved again on every pass, as Grafana does on every load.
    eventually(lambda: _queries(stack), "template variables with values", 180, 5)
    empty: list[str] = []
    logs_queries = 0

    def all_have_data() -> bool:
        nonlocal logs_queries
        empty.clear()
        queries = _queries(stack)
        assert len(queries) > 60
        logs_queries = sum(1 for _, t, _ in queries if t["datasource"]["type"] == VICTORIALOGS)
        for where, target, expr in queries:
            try:
                result = _run(stack, target, expr)
            except AssertionError as error:
                pytest.fail(f"{where}: query not accepted: {error}\n{expr}")
            if not result:
                empty.append(f"{where}: {expr}")
        return not empty

    try:
        eventually(all_have_data, "data in every panel", timeout_s=240, every_s=10)
    except AssertionError:
        pytest.fail("panels without data:\n" + "\n".join(empty))
    assert logs_queries == 2
