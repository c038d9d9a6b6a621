"""`pulse doctor` against the real backends of the local stack (its direct mode): every backend
check passes while Pulse runs, and a dead backend fails with its fix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import LivePulse, eventually
from stack import Stack

pytestmark = pytest.mark.e2e


def _doctor(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pulse", "doctor", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _addresses(stack: Stack, pulse: LivePulse) -> dict[str, str]:
    return {
        "--pulse-admin": pulse.admin_url,
        "--prometheus": stack.url("prometheus"),
        "--jaeger": stack.url("jaeger"),
        "--victorialogs": stack.url("victorialogs"),
    }


def test_doctor_passes_on_a_healthy_stack(stack: Stack, pulse_live: LivePulse) -> None:
    args = [
        "--no-kubernetes",
        *(part for pair in _addresses(stack, pulse_live).items() for part in pair),
    ]

    def healthy() -> str | None:
        result = _doctor(*args)
        return result.stdout if result.returncode == 0 else None

    out = eventually(healthy, "pulse doctor passing", timeout_s=180, every_s=5)
    assert out.count("[ok  ]") == 5
    assert "all checks passed" in out


def test_doctor_names_the_dead_backend_and_its_fix(stack: Stack, pulse_live: LivePulse) -> None:
    addresses = _addresses(stack, pulse_live) | {"--victorialogs": "http://127.0.0.1:9"}
    result = _doctor("--no-kubernetes", *[part for pair in addresses.items() for part in pair])
    assert result.returncode == 1
    failed = [line for line in result.stdout.splitlines() if line.startswith("[FAIL]")]
    assert failed == [
        "[FAIL] Pulse's logs are in VictoriaLogs: victorialogs at http://127.0.0.1:9 did not "
        "answer: <urlopen error [Errno 111] Connection refused>"
    ]
    assert "fix: is victorialogs running and its address right?" in result.stdout


def test_doctor_refuses_a_partial_address_list() -> None:
    result = _doctor("--no-kubernetes", "--loki", "http://127.0.0.1:3100")
    assert result.returncode == 2
    assert "missing ['--pulse-admin', '--prometheus', '--jaeger']" in result.stderr


def test_doctor_without_a_cluster_says_how_to_reach_one(tmp_path: Path) -> None:
    result = _doctor("--kubeconfig", str(tmp_path / "missing"))
    assert result.returncode == 1
    assert "[FAIL] Kubernetes API reachable" in result.stdout
    assert "fix: pass --kubeconfig/--context, or --in-cluster inside a pod" in result.stdout


def test_doctor_leaves_out_a_skipped_backend(stack: Stack, pulse_live: LivePulse) -> None:
    addresses = _addresses(stack, pulse_live)
    del addresses["--victorialogs"]
    args = [
        "--no-kubernetes",
        "--skip",
        "victorialogs",
        *(p for pair in addresses.items() for p in pair),
    ]

    def healthy() -> str | None:
        result = _doctor(*args)
        return result.stdout if result.returncode == 0 else None

    out = eventually(
        healthy, "pulse doctor passing without its logs check", timeout_s=180, every_s=5
    )
    assert out.count("[ok  ]") == 4
    assert "Pulse's logs" not in out


def test_doctor_waits_for_a_failing_check_then_reports_it(
    stack: Stack, pulse_live: LivePulse
) -> None:
    addresses = _addresses(stack, pulse_live) | {"--jaeger": "http://127.0.0.1:9"}
    args = [p for pair in addresses.items() for p in pair]
    result = _doctor("--no-kubernetes", "--wait", "1", *args)
    assert result.returncode == 1
    assert "waiting: 1 checks failing (Pulse's traces are in Jaeger)" in result.stderr
    assert "[FAIL] Pulse's traces are in Jaeger" in result.stdout
