"""The rules of alerts/: what every alert must carry, and that promtool tests cover each one.

promtool itself checks the syntax and runs the tests (`make alerts-check`, and below); these
checks fail when an alert lacks a label, an annotation, a runbook, or one of its test cases.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(REPO / "deploy" / "local")]

from processes import tool  # noqa: E402

from alerts import config, generate  # noqa: E402

ALERTS = REPO / "alerts"
SEVERITIES = {"critical", "warning", "info", "none"}
ANNOTATIONS = {"summary", "description", "runbook_url"}
RUNBOOK_SECTIONS = ("## Meaning", "## Impact", "## Diagnosis", "## Mitigation")
ALWAYS_FIRING = {"Watchdog"}


def _alert_rules() -> list[dict[str, Any]]:
    rules = []
    for path in sorted((ALERTS / "rules").glob("*.yaml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            rules += [dict(rule, file=path.name) for rule in group["rules"] if "alert" in rule]
    return rules


def _test_files() -> list[dict[str, Any]]:
    return [yaml.safe_load(p.read_text()) for p in sorted((ALERTS / "tests").glob("*.yaml"))]


RULES = _alert_rules()
ALERT_NAMES = sorted({rule["alert"] for rule in RULES})


def _seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    parts = re.findall(r"(\d+)(ms|s|m|h|d|w)", duration)
    assert parts, f"not a duration: {duration!r}"
    return sum(int(n) * units[u] for n, u in parts)


def test_there_are_alerts_in_every_area() -> None:
    files = {rule["file"] for rule in RULES}
    assert files == {
        "pulse-slo.yaml",
        "pulse-symptoms.yaml",
        "pulse-shared-state.yaml",
        "pipeline.yaml",
        "backends.yaml",
        "meta.yaml",
    }


@pytest.mark.parametrize("rule", RULES, ids=lambda r: f"{r['alert']}-{r['labels']['severity']}")
def test_alert_carries_severity_annotations_and_runbook(rule: dict[str, Any]) -> None:
    name = rule["alert"]
    assert rule["labels"].get("severity") in SEVERITIES, f"{name}: severity"
    missing = ANNOTATIONS - set(rule.get("annotations", {}))
    assert not missing, f"{name} lacks annotations {sorted(missing)}"
    annotations = rule["annotations"]
    if name not in ALWAYS_FIRING:
        assert "{{" in annotations["description"], f"{name}: description shows no value"
        # `service` scopes the inhibition of warnings by a critical alert.
        assert "service" in rule["labels"] or '"service"' in rule["expr"], f"{name}: service"
        assert "for" in rule, f"{name}: no `for`, so one bad evaluation would notify"
    url = annotations["runbook_url"]
    assert url.endswith(f"/alerts/runbooks/{name}.md"), f"{name}: runbook_url {url}"
    runbook = ALERTS / "runbooks" / f"{name}.md"
    assert runbook.is_file(), f"{name}: no runbook at {runbook.relative_to(REPO)}"
    text = runbook.read_text()
    for section in RUNBOOK_SECTIONS:
        assert section in text, f"{runbook.name} lacks {section}"


def test_every_runbook_belongs_to_an_alert() -> None:
    orphans = {p.stem for p in (ALERTS / "runbooks").glob("*.md")} - set(ALERT_NAMES)
    assert not orphans, f"runbooks without an alert: {sorted(orphans)}"


def _cases() -> dict[str, dict[str, list]]:
    """Per alert name: firing cases (eval time, severities), and quiet cases by kind."""
    found: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for document in _test_files():
        for group in document["tests"]:
            by_alert: dict[str, list[tuple[float, list]]] = defaultdict(list)
            for case in group.get("alert_rule_test", []):
                by_alert[case["alertname"]].append(
                    (_seconds(case["eval_time"]), case.get("exp_alerts") or [])
                )
            for name, cases in by_alert.items():
                fired = [t for t, exp in cases if exp]
                for when, exp in cases:
                    if exp:
                        found[name]["firing"].append((when, exp))
                    elif fired and when < min(fired):
                        found[name]["before_for"].append(when)
                    else:
                        found[name]["quiet"].append(when)
    return found


CASES = _cases()


def test_tests_name_only_existing_alerts() -> None:
    unknown = set(CASES) - set(ALERT_NAMES)
    assert not unknown, f"tests for alerts that do not exist: {sorted(unknown)}"


@pytest.mark.parametrize("rule", RULES, ids=lambda r: f"{r['alert']}-{r['labels']['severity']}")
def test_alert_has_firing_quiet_and_before_for_cases(rule: dict[str, Any]) -> None:
    name, severity = rule["alert"], rule["labels"]["severity"]
    cases = CASES.get(name, {})
    firing = [
        alert
        for _, expected in cases.get("firing", [])
        for alert in expected
        if alert.get("exp_labels", {}).get("severity") == severity
    ]
    assert firing, f"{name} ({severity}): no test where it fires"
    for alert in firing:
        assert set(alert.get("exp_annotations", {})) == set(rule["annotations"]), (
            f"{name}: a firing case does not assert every annotation"
        )
        expected_labels = set(rule["labels"])
        assert expected_labels <= set(alert["exp_labels"]), f"{name}: labels not all asserted"
    if name in ALWAYS_FIRING:
        return
    assert cases.get("quiet"), f"{name}: no test where it stays quiet"
    if _seconds(rule.get("for", "0s")) > 0:
        assert cases.get("before_for"), f"{name}: no test before its `for` ({rule['for']}) elapses"


def test_promtool_checks_and_tests_the_rules() -> None:
    promtool = tool("promtool")
    rules = sorted(str(p) for p in (ALERTS / "rules").glob("*.yaml"))
    checked = subprocess.run([promtool, "check", "rules", *rules], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tests = sorted(str(p) for p in (ALERTS / "tests").glob("*.yaml"))
    tested = subprocess.run([promtool, "test", "rules", *tests], capture_output=True, text=True)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert tested.stdout.count("SUCCESS") == len(tests)


def test_every_rule_file_is_tested() -> None:
    tested = {
        (ALERTS / "tests" / name).resolve().name
        for document in _test_files()
        for name in document["rule_files"]
    }
    untested = {p.name for p in (ALERTS / "rules").glob("*.yaml")} - tested
    assert not untested, f"rule files no promtool test loads: {sorted(untested)}"


def test_every_rule_file_is_generated_from_alerts_areas() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "alerts.generate", "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_drift_check_names_a_changed_a_missing_and_a_stray_file(tmp_path: Path) -> None:
    files = generate.rendered(config.load())
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    assert generate.drift(files, tmp_path) == []
    (tmp_path / "meta.yaml").write_text(files["meta.yaml"].replace("vector(1)", "vector(0)"))
    (tmp_path / "backends.yaml").unlink()
    (tmp_path / "loki.yaml").write_text("groups: []\n")
    assert generate.drift(files, tmp_path) == [
        "out of date: backends.yaml",
        "out of date: meta.yaml",
        "not generated: loki.yaml",
    ]


def test_runbook_links_come_from_the_config_pattern() -> None:
    for rule in RULES:
        assert rule["annotations"]["runbook_url"] == config.runbook_url(rule["alert"])


def test_dashboard_annotations_name_generated_dashboards() -> None:
    uids = {json.loads(p.read_text())["uid"] for p in (REPO / "dashboards").rglob("*.json")}
    assert uids == set(config.DASHBOARDS.values())
    for rule in RULES:
        if rule["alert"] not in ALWAYS_FIRING:
            assert rule["annotations"].get("dashboard") in uids, rule["alert"]


def test_backend_outages_inhibit_the_exporter_that_feeds_them() -> None:
    """The `backend` label of LogsBackendDown and JaegerDown must be the name of a collector
    exporter after its slash, or the inhibition of that exporter's alerts matches nothing."""
    collector = yaml.safe_load((REPO / "deploy" / "otel-collector" / "config.yaml").read_text())
    suffixes = {name.split("/", 1)[1] for name in collector["exporters"] if "/" in name}
    outages = {r["alert"]: r["labels"]["backend"] for r in RULES if "backend" in r["labels"]}
    assert set(outages) == {"LogsBackendDown", "JaegerDown"}
    for alert, backend in outages.items():
        assert backend in suffixes, f"{alert}: no exporter */{backend} in {sorted(suffixes)}"
    document = yaml.safe_load((ALERTS / "alertmanager" / "alertmanager.yml").read_text())
    sources = [
        r["source_matchers"][0]
        for r in document["inhibit_rules"]
        if "backend" in r.get("equal", [])
    ]
    assert sources == ['alertname=~"' + "|".join(outages) + '"']
