"""The chart's state: one replica keeps it embedded on a PersistentVolumeClaim; more replicas
need PostgreSQL and NATS (bundled StatefulSets or existing ones), and the chart refuses to
scale embedded state."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_chart import (
    CHART,
    _values,
    _versions_env,
    container,
    find,
    pod_spec,
    quantity,
    render,
    render_error,
)

from pulse.config import BusSettings, GrpcSettings, Settings, load
from pulse.memory import memory_bound

SCENARIO_FILES = sorted(CHART.glob("ci/*-values.yaml"))
SCALED = ("-f", str(CHART / "ci/scaled-values.yaml"))
SCALED_EXTERNAL = ("-f", str(CHART / "ci/scaled-external-values.yaml"))


def _config(objects: tuple[dict[str, Any], ...]) -> dict[str, Any]:
    return yaml.safe_load(find(objects, "ConfigMap", "pulse")["data"]["pulse.yaml"])


def _volumes(objects: tuple[dict[str, Any], ...]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in pod_spec(find(objects, "Deployment", "pulse"))["volumes"]}


@pytest.mark.parametrize(
    ("flags", "missing"),
    [
        (["--set", "pulse.replicas=2"], ["sensors", "logs"]),
        (["--set", "pulse.autoscaling.enabled=true"], ["sensors", "logs"]),
        (["--set", "pulse.replicas=3", "--set", "postgresql.enabled=true"], ["logs"]),
        (
            ["--set", "pulse.replicas=2", "--set", "nats.external.url=nats://nats:4222"],
            ["sensors"],
        ),
    ],
)
def test_more_than_one_replica_on_embedded_state_is_refused(
    flags: list[str], missing: list[str]
) -> None:
    error = render_error(*flags)
    assert "needs shared state" in error
    named = re.findall(r"(sensors|logs) \(", error)
    assert named == missing


def test_persistence_off_keeps_the_embedded_state_on_an_emptydir() -> None:
    objects = render("--set", "pulse.persistence.enabled=false")
    assert not [o for o in objects if o["kind"] == "PersistentVolumeClaim"]
    assert "emptyDir" in _volumes(objects)["data"]
    assert find(objects, "Deployment", "pulse")["spec"]["strategy"]["type"] == "RollingUpdate"


def test_one_replica_keeps_its_embedded_state_on_a_claim() -> None:
    objects = render()
    claim = find(objects, "PersistentVolumeClaim", "pulse")
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
    assert _volumes(objects)["data"]["persistentVolumeClaim"] == {"claimName": "pulse"}
    deployment = find(objects, "Deployment", "pulse")
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}, "one pod owns the volume"
    assert not [o for o in objects if o["kind"] == "StatefulSet"]
    config = _config(objects)
    assert "bus" not in config
    assert "database_url_file" not in config.get("sensors", {})


def test_bundled_engines_are_statefulsets_on_claims() -> None:
    objects = render(*SCALED)
    for name, mount, size in (
        ("pulse-postgresql", "/var/lib/postgresql/data", "2Gi"),
        ("pulse-nats", "/data", "2Gi"),
    ):
        sts = find(objects, "StatefulSet", name)
        assert sts["spec"]["replicas"] == 1
        assert sts["spec"]["serviceName"] == name
        (template,) = sts["spec"]["volumeClaimTemplates"]
        assert template["spec"]["resources"]["requests"]["storage"] == size
        (c,) = pod_spec(sts)["containers"]
        mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
        assert mounts["data"] == mount
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert probe in c, f"{name}: {probe}"
        assert find(objects, "Service", name)["spec"]["clusterIP"] == "None"


def test_scaled_pulse_reads_both_urls_from_its_config_and_a_secret(tmp_path: Path) -> None:
    objects = render(*SCALED)
    deployment = find(objects, "Deployment", "pulse")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    assert "emptyDir" in _volumes(objects)["data"]
    assert not [o for o in objects if o["kind"] == "PersistentVolumeClaim"]
    secret_volume = _volumes(objects)["sensors-database"]["secret"]
    assert secret_volume["secretName"] == "pulse-postgresql"
    mounts = {m["name"]: m["mountPath"] for m in container(objects, "pulse")["volumeMounts"]}
    assert mounts["sensors-database"] == "/etc/pulse/sensors-database"
    env = {e["name"] for e in container(objects, "pulse").get("env", [])}
    assert not env & {"PULSE_SENSORS_DATABASE_URL", "PULSE_BUS_URL"}, "no URL in the env"
    # The rendered file is a configuration Pulse starts with, given the mounted Secret.
    secret = find(objects, "Secret", "pulse-postgresql")
    url = _decode(secret["data"]["url"])
    assert (
        url
        == f"postgresql://pulse:{_decode(secret['data']['password'])}@pulse-postgresql.pulse.svc:5432/pulse"
    )
    (tmp_path / "url").write_text(url + "\n")
    config = _config(objects)
    config["sensors"]["database_url_file"] = str(tmp_path / "url")
    (tmp_path / "pulse.yaml").write_text(yaml.safe_dump(config))
    settings = load(tmp_path / "pulse.yaml")
    assert settings.sensors.database_url.get_secret_value() == url
    assert settings.bus.url.get_secret_value() == "nats://pulse-nats.pulse.svc:4222"


def _decode(value: str) -> str:
    import base64

    return base64.b64decode(value).decode()


def test_existing_engines_are_used_and_nothing_is_bundled() -> None:
    objects = render(*SCALED_EXTERNAL)
    assert not [o for o in objects if o["kind"] == "StatefulSet"]
    assert not [o for o in objects if o["metadata"]["name"] == "pulse-postgresql"]
    assert _volumes(objects)["sensors-database"]["secret"]["secretName"] == "pulse-sensors-database"
    assert _config(objects)["bus"] == {"url": "nats://nats.messaging.svc:4222"}
    hpa = find(objects, "HorizontalPodAutoscaler", "pulse")["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 4)
    assert "replicas" not in find(objects, "Deployment", "pulse")["spec"], "the HPA decides"
    secret_bus = render(*SCALED_EXTERNAL, "--set", "nats.external.existingSecret=bus-url")
    assert _config(secret_bus)["bus"] == {"url_file": "/etc/pulse/bus/url"}
    assert _volumes(secret_bus)["bus"]["secret"]["secretName"] == "bus-url"


def test_the_network_policy_lets_pulse_reach_the_engines() -> None:
    objects = render(*SCALED, "--set", "pulse.networkPolicy.enabled=true")
    policy = find(objects, "NetworkPolicy", "pulse")
    ports = {p["port"] for rule in policy["spec"]["egress"] for p in rule["ports"]}
    assert {5432, 4222} <= ports
    alone = find(render("--set", "pulse.networkPolicy.enabled=true"), "NetworkPolicy", "pulse")
    assert not {5432, 4222} & {p["port"] for r in alone["spec"]["egress"] for p in r["ports"]}


def test_engine_images_agree_with_versions_env() -> None:
    pins, values = _versions_env(), _values()
    assert values["nats"]["image"]["tag"] == f"{pins['NATS_SERVER_VERSION']}-alpine"
    assert values["postgresql"]["image"]["tag"].split(".")[0] == pins["POSTGRESQL_MAJOR"]


def test_the_bus_fits_its_server() -> None:
    """A batch at Pulse's default request limit fits NATS's max_payload (Pulse checks its own
    limit at start-up), the stream fits JetStream's file store, which fits its volume."""
    values = _values()["nats"]
    config = find(render(*SCALED), "ConfigMap", "pulse-nats")["data"]["nats.conf"]
    payload = re.search(r"^max_payload: (\d+)MB$", config, re.M)
    assert payload
    assert int(payload[1]) * 2**20 >= 2 * GrpcSettings().max_message_bytes
    store = re.fullmatch(r"(\d+)MB", values["maxFileStore"])
    assert store
    store_bytes = int(store[1]) * 2**20
    assert BusSettings.model_fields["max_bytes"].default <= store_bytes
    assert store_bytes < quantity(values["storageSize"])


@pytest.mark.parametrize("scenario", SCENARIO_FILES, ids=lambda p: p.stem)
def test_pulse_gets_the_memory_its_settings_can_take(scenario: Path) -> None:
    """The worst case of pulse.memory, with the log bus's buffers when the bus is shared,
    fits the memory limit the scenario gives Pulse."""
    objects = render("-f", str(scenario))
    config = _config(objects)
    overrides = {k: v for k, v in config.items() if k != "data_dir"}
    sensors = overrides.get("sensors", {})
    sensors.pop("database_url_file", None)  # a mounted Secret: only its presence matters here
    if "url_file" in overrides.get("bus", {}):
        overrides["bus"] = {"url": "nats://bus:4222"}
    for section in ("auth", "tls"):
        overrides.pop(section, None)  # files of the pod; they cost no memory here
    bound = sum(memory_bound(Settings(**overrides)).values())
    limit = quantity(container(objects, "pulse")["resources"]["limits"]["memory"])
    assert bound <= limit, f"{scenario.stem}: worst case {bound / 2**20:.0f} MiB"
