"""The strict dashboard checker (deploy/local/tools/dashboard-check, grafana-foundation-sdk's Go
decoder and validator): every generated dashboard passes it, and it fails on the defects a
lenient loader drops silently, while leaving missing required fields to Grafana."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "deploy" / "local"))

from processes import tool  # noqa: E402

DASHBOARDS = REPO / "dashboards"
GENERATED = sorted(DASHBOARDS.rglob("*.json"))
VICTORIALOGS = DASHBOARDS / "victorialogs" / "pulse-logs.json"


@pytest.fixture(scope="module")
def checker() -> str:
    return tool("dashboard-check")


def _check(checker: str, *paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([checker, *map(str, paths)], capture_output=True, text=True, timeout=60)


def test_every_generated_dashboard_passes(checker: str) -> None:
    assert len(GENERATED) == 8
    result = _check(checker, *GENERATED)
    assert result.returncode == 0, result.stdout + result.stderr
    for path in GENERATED:
        assert f"{path}: 0 findings" in result.stdout


def _panel(board: dict[str, Any], title: str) -> dict[str, Any]:
    return next(p for p in board["panels"] if p.get("title") == title)


def _misspell(holder: dict[str, Any], key: str, wrong: str) -> None:
    holder[wrong] = holder.pop(key)


Breakage = Callable[[dict[str, Any]], None]
DEFECTS: dict[str, tuple[Breakage | None, str]] = {
    "unknown panel key": (
        lambda b: _misspell(_panel(b, "Entries by outcome"), "gridPos", "gridPoss"),
        "unexpected field 'gridPoss'",
    ),
    "unknown key in a Prometheus query": (
        lambda b: _misspell(_panel(b, "Batches by outcome")["targets"][0], "expr", "exprr"),
        "unexpected field 'exprr'",
    ),
    "unknown key in a VictoriaLogs query": (
        lambda b: _misspell(_panel(b, "Pulse logs")["targets"][0], "expr", "exprr"),
        'unknown field "exprr"',
    ),
    "wrong type": (
        lambda b: _panel(b, "Ring buffer use")["gridPos"].update(h="8"),
        "gridPos.h: json: cannot unmarshal string",
    ),
    "value out of range": (
        lambda b: b.update(fiscalYearStartMonth=12),
        "fiscalYearStartMonth: must be < 12",
    ),
    "unknown VictoriaLogs query type": (
        lambda b: _panel(b, "Pulse logs")["targets"][0].update(queryType="logs"),
        'queryType: "logs" is none of',
    ),
    "broken JSON": (None, "(file)"),
}


@pytest.mark.parametrize("defect", sorted(DEFECTS))
def test_a_defect_fails_the_check_and_is_named(checker: str, tmp_path: Path, defect: str) -> None:
    breakage, expected = DEFECTS[defect]
    text = VICTORIALOGS.read_text()
    if breakage is None:
        broken = text[: len(text) // 2]
    else:
        board = copy.deepcopy(json.loads(text))
        breakage(board)
        broken = json.dumps(board)
    path = tmp_path / "broken.json"
    path.write_text(broken)
    result = _check(checker, path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert expected in result.stdout
    assert f"{path}: 0 findings" not in result.stdout


def test_a_missing_required_field_is_left_to_grafana(checker: str, tmp_path: Path) -> None:
    """Grafana fills required fields a file leaves out (a link's tooltip, a legend's
    showLegend) with its defaults: the checker counts them and passes."""
    board = json.loads(VICTORIALOGS.read_text())
    del board["links"][0]["tooltip"]
    del _panel(board, "Entries by outcome")["options"]["legend"]["showLegend"]
    path = tmp_path / "lenient.json"
    path.write_text(json.dumps(board))
    result = _check(checker, path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{path}: 0 findings, 2 required fields left to Grafana's defaults" in result.stdout


def test_one_bad_file_among_good_ones_fails_the_run(checker: str, tmp_path: Path) -> None:
    board = json.loads(VICTORIALOGS.read_text())
    _misspell(_panel(board, "Pulse log lines"), "gridPos", "gridPoss")
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(board))
    result = _check(checker, *GENERATED, path)
    assert result.returncode == 1
    assert result.stdout.count(": 0 findings") == len(GENERATED)


def test_an_unreadable_file_is_an_error(checker: str, tmp_path: Path) -> None:
    result = _check(checker, tmp_path / "absent.json")
    assert result.returncode == 2
    assert "absent.json" in result.stderr
