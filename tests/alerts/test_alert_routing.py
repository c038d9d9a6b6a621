"""Alertmanager routing of alerts/alertmanager/alertmanager.yml, checked by the real amtool."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "deploy" / "local"))

from processes import tool  # noqa: E402
from stack import Stack  # noqa: E402

ALERTMANAGER = REPO / "alerts" / "alertmanager"
RECEIVER_BY_SEVERITY = {"critical": "pager", "warning": "chat", "info": "ticket"}


def _rules() -> list[dict[str, Any]]:
    rules = []
    for path in sorted((REPO / "alerts" / "rules").glob("*.yaml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            rules += [rule for rule in group["rules"] if "alert" in rule]
    return rules


def _cases() -> list[tuple[dict[str, str], list[str]]]:
    derived = []
    for rule in _rules():
        labels = {"alertname": rule["alert"], **rule["labels"]}
        receiver = (
            "deadmansswitch"
            if rule["alert"] == "Watchdog"
            else RECEIVER_BY_SEVERITY[labels["severity"]]
        )
        derived.append((labels, [receiver]))
    listed = yaml.safe_load((ALERTMANAGER / "routes-tests.yaml").read_text())
    return derived + [(case["labels"], case["receivers"]) for case in listed]


CASES = _cases()


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The config as the local stack renders it: secrets and templates at local paths."""
    return Stack(tmp_path_factory.mktemp("alertmanager")).alertmanager_config()


@pytest.fixture(scope="module")
def amtool() -> str:
    return tool("amtool")


def test_amtool_accepts_the_config_and_its_templates(amtool: str, config: Path) -> None:
    result = subprocess.run([amtool, "check-config", str(config)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 templates" in result.stdout


@pytest.mark.parametrize(
    ("labels", "receivers"), CASES, ids=[",".join(f"{v}" for v in c[0].values()) for c in CASES]
)
def test_route(amtool: str, config: Path, labels: dict[str, str], receivers: list[str]) -> None:
    args = [f"{key}={value}" for key, value in labels.items()]
    result = subprocess.run(
        [
            amtool,
            "config",
            "routes",
            "test",
            f"--config.file={config}",
            f"--verify.receivers={','.join(receivers)}",
            *args,
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, f"{labels} -> {result.stdout.strip()}, want {receivers}"


def test_every_route_and_receiver_is_exercised() -> None:
    document = yaml.safe_load((ALERTMANAGER / "alertmanager.yml").read_text())
    routed = {document["route"]["receiver"]} | {
        route["receiver"] for route in document["route"]["routes"]
    }
    declared = {receiver["name"] for receiver in document["receivers"]}
    assert routed == declared == {"pager", "chat", "ticket", "deadmansswitch"}
    exercised = {receiver for _, receivers in CASES for receiver in receivers}
    assert exercised == declared


def test_receivers_read_urls_from_files_and_send_resolved() -> None:
    text = (ALERTMANAGER / "alertmanager.yml").read_text()
    assert "http://" not in text.split("receivers:", 1)[1].replace("http://localhost", "")
    document = yaml.safe_load(text)
    for receiver in document["receivers"]:
        configs = [c for key, value in receiver.items() if key != "name" for c in value]
        assert configs, receiver["name"]
        for item in configs:
            assert item["send_resolved"] is True, receiver["name"]
            url = item.get("url_file") or item.get("api_url_file")
            assert url == f"/etc/alertmanager/secrets/{receiver['name']}.url", receiver["name"]


def test_matchers_syntax_only() -> None:
    document = yaml.safe_load((ALERTMANAGER / "alertmanager.yml").read_text())
    routes = [document["route"], *document["route"]["routes"]]
    assert not any("match" in r or "match_re" in r for r in routes)
    for rule in document["inhibit_rules"]:
        assert not {"source_match", "target_match", "source_match_re", "target_match_re"} & set(
            rule
        )
