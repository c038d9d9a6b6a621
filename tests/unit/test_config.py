"""Configuration: layering, validation messages that name the key, credentials from files."""

from __future__ import annotations

from pathlib import Path

import pytest

from pulse import config


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("PULSE_"):
            monkeypatch.delenv(key)


def test_defaults_match_the_documented_ports() -> None:
    settings = config.load()
    assert settings.grpc.port == 50051
    assert settings.admin.port == 9464
    assert settings.ingest.max_message_bytes == 8192
    assert settings.metrics.hosts == 4
    assert len(settings.metrics.regions) == 2
    assert settings.sensors.window == 10
    assert not settings.auth.enabled
    assert not settings.faults.enabled


def test_yaml_then_env_then_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "pulse.yaml"
    file.write_text("grpc:\n  port: 1111\nadmin:\n  port: 2222\ningest:\n  max_batch_entries: 7\n")
    monkeypatch.setenv("PULSE_ADMIN_PORT", "3333")
    monkeypatch.setenv("PULSE_INGEST_MAX_BATCH_ENTRIES", "8")
    settings = config.load(file, {"ingest": {"max_batch_entries": 9}})
    assert settings.grpc.port == 1111  # YAML over default
    assert settings.admin.port == 3333  # env over YAML
    assert settings.ingest.max_batch_entries == 9  # flag over env


def test_config_file_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "pulse.yaml"
    file.write_text("metrics:\n  hosts: 6\n")
    monkeypatch.setenv("PULSE_CONFIG", str(file))
    assert config.load().metrics.hosts == 6


def test_documented_environment_names(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PULSE_GRPC_PORT", "5000")
    monkeypatch.setenv("PULSE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PULSE_FAULTS_ENABLED", "true")
    monkeypatch.setenv("PULSE_AUTH_TOKENS", "one, two")
    monkeypatch.setenv("PULSE_AUTH_API_KEYS", "k1")
    settings = config.load()
    assert settings.grpc.port == 5000
    assert settings.data_dir == tmp_path
    assert settings.faults.enabled
    assert [t.get_secret_value() for t in settings.auth.tokens] == ["one", "two"]
    assert [k.get_secret_value() for k in settings.auth.api_keys] == ["k1"]


def test_invalid_value_names_key_value_and_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULSE_GRPC_PORT", "70000")
    with pytest.raises(config.ConfigError) as error:
        config.load()
    message = str(error.value)
    assert "grpc.port" in message
    assert "PULSE_GRPC_PORT" in message
    assert "70000" in message
    assert "less than or equal to 65535" in message


def test_unknown_key_in_yaml_is_named(tmp_path: Path) -> None:
    file = tmp_path / "pulse.yaml"
    file.write_text("ingest:\n  max_batch_entrys: 5\n")
    with pytest.raises(config.ConfigError, match=r"ingest\.max_batch_entrys .*unknown key"):
        config.load(file)


def test_literal_lists_the_allowed_values(tmp_path: Path) -> None:
    file = tmp_path / "pulse.yaml"
    file.write_text("telemetry:\n  log_format: xml\n")
    with pytest.raises(config.ConfigError, match=r"telemetry\.log_format .*'json' or 'text'"):
        config.load(file)


def test_broken_yaml_and_missing_file(tmp_path: Path) -> None:
    file = tmp_path / "pulse.yaml"
    file.write_text("grpc: [unclosed\n")
    with pytest.raises(config.ConfigError, match="not valid YAML"):
        config.load(file)
    with pytest.raises(config.ConfigError, match="no such file"):
        config.load(tmp_path / "absent.yaml")


def test_credentials_from_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("alpha\n\n  beta  \n")
    monkeypatch.setenv("PULSE_AUTH_TOKENS_FILE", str(tokens))
    settings = config.load()
    assert [t.get_secret_value() for t in settings.auth.tokens] == ["alpha", "beta"]
    assert settings.auth.enabled


def test_unreadable_credentials_file_is_named_and_secrets_masked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PULSE_AUTH_TOKENS", "supersecret")
    monkeypatch.setenv("PULSE_AUTH_API_KEYS_FILE", str(tmp_path / "none"))
    with pytest.raises(config.ConfigError) as error:
        config.load()
    assert "api_keys_file" in str(error.value)
    assert "supersecret" not in str(error.value)


def test_tls_needs_cert_and_key_together(tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("x")
    with pytest.raises(config.ConfigError, match=r"tls.*cert_file and key_file"):
        config.load(overrides={"tls": {"cert_file": str(cert)}})


def test_sensor_range_must_be_ordered() -> None:
    with pytest.raises(config.ConfigError, match=r"sensors.*min_temperature must be below"):
        config.load(overrides={"sensors": {"min_temperature": 50, "max_temperature": 10}})


def test_an_unknown_pulse_variable_stops_start_up_naming_the_nearest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PULSE_TOKENS", "secret")
    monkeypatch.setenv("PULSE_API_KEYS", "secret")
    with pytest.raises(config.ConfigError) as error:
        config.load()
    message = str(error.value)
    assert "PULSE_TOKENS: not a Pulse setting; did you mean PULSE_AUTH_TOKENS?" in message
    assert "PULSE_API_KEYS: not a Pulse setting; did you mean PULSE_AUTH_API_KEYS?" in message
    assert "secret" not in message


def test_the_projects_own_variables_are_not_settings_and_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in (
        "PULSE_STACK_PORT_OFFSET",
        "PULSE_STACK_DIR",
        "PULSE_TOOLS_DIR",
        "PULSE_CLUSTER_PORT_OFFSET",
        "PULSE_ALERT_WEBHOOK_BASE",
        "PULSE_TARGET",
        "PULSE_TOKEN",
        "PULSE_LOADGEN_DURATION",
    ):
        monkeypatch.setenv(name, "1")
    assert config.load().grpc.port == 50051


def _service_links(service: str, port: int, address: str = "10.96.0.12") -> dict[str, str]:
    """The variables the kubelet writes for a Service of the pod's namespace."""
    prefix = service.upper().replace("-", "_")
    url = f"tcp://{address}:{port}"
    return {
        f"{prefix}_SERVICE_HOST": address,
        f"{prefix}_SERVICE_PORT": str(port),
        f"{prefix}_SERVICE_PORT_GRPC": str(port),
        f"{prefix}_PORT": url,
        f"{prefix}_PORT_{port}_TCP": url,
        f"{prefix}_PORT_{port}_TCP_PROTO": "tcp",
        f"{prefix}_PORT_{port}_TCP_PORT": str(port),
        f"{prefix}_PORT_{port}_TCP_ADDR": address,
    }


def test_kubernetes_service_links_are_not_taken_for_typos(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for service, port in (("pulse", 50051), ("pulse-collector", 4317), ("pulse-jaeger", 16686)):
        for name, value in _service_links(service, port).items():
            monkeypatch.setenv(name, value)
    assert config.load().grpc.port == 50051


def test_a_service_link_name_with_a_value_the_kubelet_never_writes_is_unknown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    links = _service_links("pulse-metrics", 9464)
    port, host = (name for name in links if name.endswith(("_METRICS_PORT", "_SERVICE_HOST")))
    monkeypatch.setenv(port, "9464")  # meant as a setting: not tcp://address:port
    monkeypatch.setenv(host, "pulse.example")  # a name, not an address
    with pytest.raises(config.ConfigError) as error:
        config.load()
    assert f"{port}: not a Pulse setting" in str(error.value)
    assert f"{host}: not a Pulse setting" in str(error.value)


def test_every_pulse_variable_the_repository_names_is_known() -> None:
    """One source of truth: a new PULSE_* variable anywhere in the project is either a setting
    or listed in config.OTHER_VARIABLES, else `make run` with it exported would stop Pulse."""
    import re
    import subprocess

    repo = Path(__file__).resolve().parents[2]
    listed = subprocess.run(
        ["git", "grep", "-ohE", r"PULSE_[A-Z0-9_]*[A-Z0-9]", "--", ".", ":!service/pulse/v1"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    # Python constants named PULSE_* (e.g. alerts.config.PULSE_MEMORY_KEY) are not variables.
    constants = set(
        subprocess.run(
            ["git", "grep", "-ohP", r"^PULSE_[A-Z0-9_]+(?= =)", "--", "*.py"],
            cwd=repo,
            capture_output=True,
            text=True,
        ).stdout.split()
    )
    known = config.setting_variables()
    unknown = sorted(
        {
            name
            for name in listed
            if name not in known
            and name not in constants
            and not any(
                name.startswith(o) if o.endswith("_") else name == o for o in config.OTHER_VARIABLES
            )
            and f"{name}_" not in config.OTHER_VARIABLES  # a family's own name
            and not re.fullmatch(r"PULSE_(TOKENS|API_KEYS|SECTION|KEY)", name)  # this file's
        }
    )
    assert not unknown, f"add to config.OTHER_VARIABLES or make them settings: {unknown}"


def test_an_invalid_redaction_pattern_names_the_key(tmp_path: Path) -> None:
    file = tmp_path / "pulse.yaml"
    file.write_text("ingest:\n  redaction_patterns: ['ok', '(unclosed']\n")
    with pytest.raises(config.ConfigError) as error:
        config.load(file)
    message = str(error.value)
    assert "ingest.redaction_patterns" in message
    assert "redaction_patterns[1]" in message
    assert "missing )" in message


def test_the_stated_memory_bound_fits_the_charts_limit() -> None:
    """README.md's worst case is memory_bound(defaults), and the chart gives Pulse that much."""
    import re

    import yaml

    from pulse.memory import memory_bound

    repo = Path(__file__).resolve().parents[2]
    total = sum(memory_bound(config.Settings()).values())
    values = yaml.safe_load((repo / "deploy/helm/pulse/values.yaml").read_text())
    limit = values["pulse"]["resources"]["limits"]["memory"]
    number, unit = re.fullmatch(r"(\d+)(Mi|Gi)", limit).groups()
    assert total <= int(number) * {"Mi": 2**20, "Gi": 2**30}[unit]
    readme = (repo / "README.md").read_text()
    assert memory_table(config.Settings()) in readme, "README states the default worst case"


def memory_table(settings: config.Settings) -> str:
    """The worst-case table of README.md, as memory_bound computes it."""
    from pulse.memory import memory_bound

    parts = memory_bound(settings)
    lines = ["| part | bytes (defaults) |", "| --- | --- |"]
    lines += [f"| {part} | {size / 2**20:.1f} MiB |" for part, size in parts.items()]
    lines.append(f"| **worst case** | **{sum(parts.values()) / 2**20:.0f} MiB** |")
    return "\n".join(lines)
