"""The monitoring config (alerts/config.py): thresholds derived from the chart's limits agree
with the chart, follow it when it changes, and a missing or malformed value is named."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from alerts import config  # noqa: E402
from alerts.areas import symptoms  # noqa: E402

VALUES = REPO / "deploy" / "helm" / "pulse" / "values.yaml"
MIB = 2**20


def _chart_pulse_limit() -> int:
    """The chart's memory limit of Pulse, read here without the config's parser."""
    limit = yaml.safe_load(VALUES.read_text())["pulse"]["resources"]["limits"]["memory"]
    assert limit.endswith("Mi"), f"write this test's parsing for {limit!r}"
    return int(limit.removesuffix("Mi")) * MIB


def _committed_memory_threshold() -> int:
    document = yaml.safe_load((REPO / "alerts" / "rules" / "pulse-symptoms.yaml").read_text())
    rule = next(
        r for g in document["groups"] for r in g["rules"] if r.get("alert") == "PulseMemoryHigh"
    )
    return int(re.fullmatch(r".*> (\d+)\n", rule["expr"], re.S).group(1))


def test_pulse_memory_high_is_80_percent_of_the_chart_limit() -> None:
    assert _committed_memory_threshold() == int(0.8 * _chart_pulse_limit())


def test_thresholds_follow_the_chart_values(tmp_path: Path) -> None:
    values = yaml.safe_load(VALUES.read_text())
    values["pulse"]["resources"]["limits"]["memory"] = "1Gi"
    changed = tmp_path / "values.yaml"
    changed.write_text(yaml.safe_dump(values))
    monitoring = config.load(changed)
    assert monitoring.thresholds.limits.pulse_memory_bytes == 2**30
    assert monitoring.thresholds.pulse_memory_high_bytes == int(0.8 * 2**30)
    rules = symptoms.rule_file(monitoring)
    memory = next(a for g in rules.groups for a in g.rules if a.name == "PulseMemoryHigh")
    assert memory.expr.endswith(f"> {int(0.8 * 2**30)}")
    assert "1024 MiB" in memory.description


def test_a_missing_limit_is_named(tmp_path: Path) -> None:
    values = yaml.safe_load(VALUES.read_text())
    del values["pulse"]["resources"]["limits"]["memory"]
    broken = tmp_path / "values.yaml"
    broken.write_text(yaml.safe_dump(values))
    with pytest.raises(config.ConfigError, match=r"pulse\.resources\.limits\.memory is missing"):
        config.load(broken)


@pytest.mark.parametrize("value", ["384MB", "lots", "-1Mi", ""])
def test_a_malformed_quantity_is_named(value: str) -> None:
    with pytest.raises(config.ConfigError, match=r"^pulse\.resources\.limits\.memory: "):
        config.parse_quantity(value, config.PULSE_MEMORY_KEY)


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [
        ("384Mi", 384 * MIB),
        ("1Gi", 2**30),
        ("512M", 512 * 10**6),
        ("1.5Gi", 3 * 2**29),
        (4096, 4096),
    ],
)
def test_quantities(quantity: str | int, expected: int) -> None:
    assert config.parse_quantity(quantity, "k") == expected


def test_server_errors_split_every_rpc_type_once() -> None:
    errors = config.SERVER_ERRORS
    assert set(errors.single_answer_types) | set(errors.stream_types) == set(config.RPC_TYPES)
    assert not set(errors.single_answer_types) & set(errors.stream_types)
    assert "CANCELLED" not in errors.always + errors.single_answer_only
    with pytest.raises(config.ConfigError, match="must split the RPC types"):
        config.ServerErrors(stream_types=("server_stream",))


def test_bad_event_selectors() -> None:
    single, stream = config.SERVER_ERRORS.selectors('job="pulse"')
    assert single == (
        'job="pulse", pulse_rpc_type=~"unary|client_stream", '
        'rpc_response_status_code=~"UNKNOWN|INTERNAL|UNAVAILABLE|DATA_LOSS|DEADLINE_EXCEEDED"'
    )
    assert stream == (
        'job="pulse", pulse_rpc_type=~"server_stream|bidi_stream", '
        'rpc_response_status_code=~"UNKNOWN|INTERNAL|UNAVAILABLE|DATA_LOSS"'
    )
