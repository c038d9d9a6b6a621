"""The check scripts fail when their tool fails: no shell idiom of theirs swallows a failure, and
each step of the chart checks, and the collector's validation, fails on a broken input."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHECK = REPO / "deploy/helm/check.sh"

# Shell idioms that turn a failing check into a passing one. In a `set -e` script the failure of
# a command on the left of `&&` does not stop the script; `|| true` discards any status;
# PIPESTATUS after `||` reads the status of the command after `||`.
SWALLOWED = {
    "|| true": re.compile(r"\|\|\s*(true|:)\s*(;|$|\))"),
    "PIPESTATUS": re.compile(r"PIPESTATUS"),
    "ignored recipe error": re.compile(r"^\t-"),
}
AND_ECHO = re.compile(r"&&\s*echo\b[^;|&]*$")


def swallowing_lines(path: str, text: str) -> list[str]:
    """Lines of a shell script or makefile whose idiom hides a failure."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        code = line.split(" # ")[0]
        for name, pattern in SWALLOWED.items():
            if pattern.search(code):
                found.append(f"{path}:{number}: {name}: {line.strip()}")
        # Under `set -e` a script goes on after `cmd && echo ok` when cmd fails. In a make
        # recipe the line's status is the list's, so that idiom is only a fault in scripts.
        if path.endswith(".sh") and AND_ECHO.search(code):
            found.append(f"{path}:{number}: && echo: {line.strip()}")
    return found


def check_scripts() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [
        p
        for p in listed
        if (p.endswith((".sh", ".mk")) or Path(p).name == "Makefile" or p == ".ci/run")
        and (REPO / p).is_file()
    ]


def test_no_check_script_swallows_a_failure() -> None:
    scripts = check_scripts()
    assert {"deploy/helm/check.sh", "deploy/local/stack.mk", "Makefile"} <= set(scripts), scripts
    found = [line for p in scripts for line in swallowing_lines(p, (REPO / p).read_text())]
    assert not found, "\n".join(found)


@pytest.mark.parametrize(
    ("path", "line"),
    [
        ("x.sh", "helm lint chart | grep -v '^$' || true"),
        ("x.sh", "[[ ${PIPESTATUS[0]} -eq 0 ]] || exit 1"),
        ("x.sh", 'hadolint Dockerfile && echo "hadolint: clean"'),
        ("x.mk", "\t-promtool check rules alerts/rules/*.yaml"),
        ("x.mk", "\tcmd || :"),
    ],
)
def test_each_swallowing_idiom_is_found(path: str, line: str) -> None:
    assert swallowing_lines(path, line)


def test_a_failure_handled_on_purpose_is_not_flagged() -> None:
    text = (
        "\tkind get clusters | grep -qx pulse || kind create cluster\n"
        "\tgit diff --exit-code || { echo 'stale'; exit 1; }\n"
        "\tamtool check-config x; rc=$$?; rm -rf d; exit $$rc\n"
    )
    assert swallowing_lines("x.mk", text) == []


# --- each step fails on a broken input --------------------------------------------------------


def _check(steps: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CHECK), *steps],
        cwd=REPO,
        env={**os.environ, "PYTHON": sys.executable, **env},
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture
def chart(tmp_path: Path) -> Path:
    copy = tmp_path / "pulse"
    shutil.copytree(REPO / "deploy/helm/pulse", copy)
    return copy


def test_chart_checks_pass_on_the_chart_as_it_is(chart: Path) -> None:
    result = _check(["lint", "configs"], PULSE_CHART=str(chart))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "chart checks passed: lint configs" in result.stdout


def test_helm_lint_fails_on_a_scenario_the_schema_refuses(chart: Path) -> None:
    (chart / "ci/broken-values.yaml").write_text("pulse:\n  replicas: many\n")
    result = _check(["lint"], PULSE_CHART=str(chart))
    assert result.returncode == 1, result.stdout
    assert f"FAILED: helm lint with {chart}/ci/broken-values.yaml" in result.stderr
    assert "replicas" in result.stderr
    assert "chart checks passed" not in result.stdout


def test_kubeconform_fails_on_a_manifest_with_an_unknown_field(chart: Path) -> None:
    service = chart / "templates/jaeger/service.yaml"
    service.write_text(service.read_text().replace("spec:\n", "spec:\n  clusterIPP: None\n", 1))
    result = _check(["kubeconform"], PULSE_CHART=str(chart))
    assert result.returncode != 0, result.stdout
    assert "clusterIPP" in result.stdout + result.stderr


def test_jaeger_validate_fails_on_a_broken_jaeger_config(chart: Path) -> None:
    config = chart / "config/jaeger.yaml"
    config.write_text(config.read_text().replace("extensions:\n", "extensions:\n  nope: {}\n", 1))
    result = _check(["configs"], PULSE_CHART=str(chart))
    assert result.returncode == 1, result.stdout
    assert "FAILED: jaeger validate of the chart's Jaeger config" in result.stderr
    assert "jaeger: config valid" not in result.stdout


def test_nats_server_fails_on_a_broken_nats_config(chart: Path) -> None:
    config = chart / "config/nats.conf"
    config.write_text(config.read_text().replace("max_payload: 8MB", "max_payload: 8 MB", 1))
    result = _check(["configs"], PULSE_CHART=str(chart))
    assert result.returncode == 1, result.stdout
    assert "FAILED: nats-server -t of the chart's NATS config" in result.stderr
    assert "nats-server: config valid" not in result.stdout


def test_hadolint_fails_on_a_dockerfile_it_flags(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM python:latest\nRUN apt-get install -y curl\n")
    result = _check(["hadolint"], PULSE_DOCKERFILE=str(dockerfile))
    assert result.returncode != 0, result.stdout
    assert "DL3007" in result.stdout + result.stderr
    assert "hadolint: clean" not in result.stdout


def test_an_unknown_step_is_refused_naming_the_steps() -> None:
    result = _check(["lnt"])
    assert result.returncode == 2
    assert "unknown step 'lnt'; steps: sync lint kubeconform configs hadolint checkov" in (
        result.stderr
    )


def test_collector_validate_fails_on_a_broken_collector_config(tmp_path: Path) -> None:
    broken = tmp_path / "config.yaml"
    source = (REPO / "deploy/otel-collector/config.yaml").read_text()
    broken.write_text(source.replace("send_batch_size:", "send_batch_sizee:", 1))
    result = subprocess.run(
        ["make", "--no-print-directory", "collector-validate", f"COLLECTOR_CONFIG={broken}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode != 0, result.stdout
    assert "send_batch_sizee" in result.stderr
    assert "collector configs valid" not in result.stdout
