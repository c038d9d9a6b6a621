"""The generated dashboards and Grafana provisioning: the model Grafana loads, datasource UIDs
that exist, a description and unit on every panel, links that lead somewhere, no drift."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DASHBOARDS = REPO / "dashboards"
PROVISIONING = DASHBOARDS / "provisioning"
UIDS = {
    "pulse-overview",
    "pulse-streams",
    "pulse-logs",
    "pulse-sensors",
    "pulse-slo",
    "pulse-pipeline",
    "pulse-shared-state",
}
# The logs dashboard exists once per logs backend: (folder, datasource type, datasource UID).
LOGS_BACKENDS = {
    "loki": ("loki", "loki"),
    "victorialogs": ("victoriametrics-logs-datasource", "victorialogs"),
}
FILES = {f"{uid}.json" for uid in UIDS - {"pulse-logs"}} | {
    f"{backend}/pulse-logs.json" for backend in LOGS_BACKENDS
}
# Panels whose content has no unit: log lines.
UNITLESS = {"logs", "row"}


def _load() -> dict[str, dict[str, Any]]:
    return {
        p.relative_to(DASHBOARDS).as_posix(): json.loads(p.read_text())
        for p in sorted(DASHBOARDS.rglob("*.json"))
    }


BOARDS = _load()


def _panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in board["panels"] if p["type"] != "row"]


def _datasources() -> dict[str, dict[str, Any]]:
    sources = {}
    for path in sorted((PROVISIONING / "datasources").glob("*.yaml")):
        document = yaml.safe_load(path.read_text())
        sources |= {source["uid"]: source for source in document["datasources"]}
    return sources


SOURCES = _datasources()


def test_committed_json_is_what_the_code_generates() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "dashboards.generate", "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_six_dashboards_exist_and_the_logs_one_per_backend() -> None:
    assert set(BOARDS) == FILES
    for path, board in BOARDS.items():
        assert board["uid"] == path.rsplit("/", 1)[-1].removesuffix(".json")
    assert {board["uid"] for board in BOARDS.values()} == UIDS


@pytest.mark.parametrize("uid", sorted(FILES))
def test_dashboard_model(uid: str) -> None:
    board = BOARDS[uid]
    for key in ("title", "uid", "schemaVersion", "panels", "templating", "time", "links"):
        assert key in board, f"{uid}: no {key}"
    assert board["schemaVersion"] >= 39
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)), f"{uid}: duplicate panel ids"
    for panel in board["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, f"{uid}/{panel['title']}: wider than the grid"
        assert grid["h"] > 0, f"{uid}/{panel['title']}: no height"
    assert len(_panels(board)) >= 4


@pytest.mark.parametrize("uid", sorted(FILES))
def test_every_panel_has_a_description_a_unit_and_queries(uid: str) -> None:
    for panel in _panels(BOARDS[uid]):
        where = f"{BOARDS[uid]['title']} / {panel['title']}"
        assert len(panel.get("description", "")) > 20, f"{where}: no description"
        if panel["type"] not in UNITLESS:
            assert panel["fieldConfig"]["defaults"].get("unit"), f"{where}: no unit"
        assert panel["targets"], f"{where}: no query"
        assert all(t.get("expr") for t in panel["targets"]), f"{where}: empty query"


def _resolve(uid: str, reference: dict[str, Any]) -> str:
    """A datasource reference's UID, following ${variable} to the variable's default."""
    match = re.fullmatch(r"\$\{(\w+)\}", reference["uid"])
    if not match:
        return reference["uid"]
    variables = {v["name"]: v for v in BOARDS[uid]["templating"]["list"]}
    variable = variables.get(match.group(1))
    assert variable, f"{uid}: {reference['uid']} is not a variable"
    assert variable["type"] == "datasource", f"{uid}: {reference['uid']} is not a datasource"
    return variable["current"]["value"]


@pytest.mark.parametrize("uid", sorted(FILES))
def test_every_datasource_referenced_is_provisioned(uid: str) -> None:
    board = BOARDS[uid]
    references = [p["datasource"] for p in _panels(board)]
    references += [t["datasource"] for p in _panels(board) for t in p["targets"]]
    references += [v["datasource"] for v in board["templating"]["list"] if "datasource" in v]
    for reference in references:
        resolved = _resolve(uid, reference)
        assert resolved in SOURCES, f"{uid}: datasource {resolved} is not provisioned"
        assert SOURCES[resolved]["type"] == reference["type"]


@pytest.mark.parametrize("uid", sorted(FILES))
def test_links_lead_to_dashboards_and_runbooks(uid: str) -> None:
    links = BOARDS[uid]["links"]
    targets = {link["url"].removeprefix("/d/") for link in links if link["url"].startswith("/d/")}
    assert targets == UIDS - {BOARDS[uid]["uid"]}
    runbooks = [link["url"] for link in links if "/alerts/runbooks/" in link["url"]]
    assert runbooks, f"{uid}: no runbook link"
    for url in runbooks:
        path = REPO / "alerts" / "runbooks" / url.rsplit("/", 1)[1]
        assert path.is_file(), f"{uid}: runbook link to missing {path.name}"


def test_template_variables_users_expect() -> None:
    for uid, board in BOARDS.items():
        names = {v["name"] for v in board["templating"]["list"]}
        assert "datasource" in names, uid
    for uid in ("pulse-overview.json", "pulse-streams.json"):
        names = {v["name"] for v in BOARDS[uid]["templating"]["list"]}
        assert {"instance", "method"} <= names, uid


def test_exemplars_open_traces_in_jaeger() -> None:
    latency = [
        t
        for p in _panels(BOARDS["pulse-overview.json"])
        if p["fieldConfig"]["defaults"].get("unit") == "s"
        for t in p["targets"]
    ]
    assert latency
    assert all(t.get("exemplar") for t in latency)
    destinations = SOURCES["prometheus"]["jsonData"]["exemplarTraceIdDestinations"]
    assert {"name": "trace_id", "datasourceUid": "jaeger"}.items() <= destinations[0].items()


def test_datasources_are_correlated() -> None:
    assert set(SOURCES) == {"prometheus", "loki", "victorialogs", "jaeger", "alertmanager"}
    for logs in ("loki", "victorialogs"):
        derived = SOURCES[logs]["jsonData"]["derivedFields"][0]
        assert derived["datasourceUid"] == "jaeger"
        assert derived["matcherRegex"] == "trace_id"
    jaeger = SOURCES["jaeger"]["jsonData"]
    # The chart sets the logs backend's uid (tests/chart checks each backend's links).
    assert jaeger["tracesToLogsV2"]["datasourceUid"] == "${PULSE_LOGS_DATASOURCE_UID}"
    assert jaeger["tracesToMetrics"]["datasourceUid"] == "prometheus"
    assert SOURCES["alertmanager"]["jsonData"]["implementation"] == "prometheus"
    for source in SOURCES.values():
        assert source["url"].startswith("${PULSE_"), f"{source['uid']}: address hard-coded"


def test_dashboard_provider_points_at_the_mounted_folder() -> None:
    document = yaml.safe_load((PROVISIONING / "dashboards" / "pulse.yaml").read_text())
    provider = document["providers"][0]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards/pulse"


def _skeleton(panel: dict[str, Any]) -> tuple[Any, ...]:
    return (panel["type"], panel["title"], json.dumps(panel["gridPos"], sort_keys=True))


def test_the_logs_variants_differ_only_in_the_logs_queries() -> None:
    loki, victorialogs = (BOARDS[f"{b}/pulse-logs.json"] for b in LOGS_BACKENDS)
    assert [_skeleton(p) for p in loki["panels"]] == [_skeleton(p) for p in victorialogs["panels"]]
    for backend, (plugin, uid) in LOGS_BACKENDS.items():
        board = BOARDS[f"{backend}/pulse-logs.json"]
        variable = next(v for v in board["templating"]["list"] if v["name"] == "logs")
        assert (variable["query"], variable["current"]["value"]) == (plugin, uid)
        logs_targets = [
            t for p in _panels(board) for t in p["targets"] if t["datasource"]["uid"] == "${logs}"
        ]
        assert len(logs_targets) == 2, backend
        assert {t["datasource"]["type"] for t in logs_targets} == {plugin}

    def prometheus(board: dict[str, Any]) -> list[str]:
        return [
            t["expr"]
            for p in _panels(board)
            for t in p["targets"]
            if t["datasource"]["type"] == "prometheus"
        ]

    assert prometheus(loki) == prometheus(victorialogs)
    assert "service_name" in json.dumps(loki)
    assert "service.name" in json.dumps(victorialogs)


def _chart_pulse_memory_limit() -> int:
    values = yaml.safe_load((REPO / "deploy" / "helm" / "pulse" / "values.yaml").read_text())
    limit = values["pulse"]["resources"]["limits"]["memory"]
    assert limit.endswith("Mi"), f"write this test's parsing for {limit!r}"
    return int(limit.removesuffix("Mi")) * 2**20


def test_memory_thresholds_follow_the_chart_limit() -> None:
    limit = _chart_pulse_memory_limit()
    panels = {p["title"]: p for p in _panels(BOARDS["pulse-overview.json"])}
    steps = [
        step["value"]
        for title in ("Memory (largest instance)", "Memory")
        for step in panels[title]["fieldConfig"]["defaults"]["thresholds"]["steps"]
        if step["value"] is not None
    ]
    assert steps == [int(0.8 * limit), limit, int(0.8 * limit)]
    assert f"{limit // 2**20} MiB" in panels["Memory (largest instance)"]["description"]


def test_the_sdk_is_pinned_to_the_grafana_11_6_flavour() -> None:
    project = (REPO / "pyproject.toml").read_text()
    pins = [line for line in project.splitlines() if "grafana-foundation-sdk" in line]
    assert pins == ['  "grafana-foundation-sdk==1769699379!11.6.0",']
    assert {board["schemaVersion"] for board in BOARDS.values()} == {41}
