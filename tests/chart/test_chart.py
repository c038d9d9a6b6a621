"""The Helm chart's logic, checked on `helm template` output.

`make chart-check` proves the chart lints, validates against the Kubernetes schemas and passes
the security scan; these tests prove what the chart means: a backend switched off disappears and
the collector follows the external endpoint, the packaged files are their sources, every
container of every scenario is locked down, the schema refuses mistakes, the README's resource
figure is the chart's, and versions agree with deploy/local/versions.env and pyproject.toml.
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
import shutil
import subprocess
import sys
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from pulse.cli.main import build_parser
from pulse.config import GrpcSettings, Settings, load

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "deploy" / "local"))

from processes import tool  # noqa: E402

CHART = REPO / "deploy/helm/pulse"
SCENARIOS = sorted(CHART.glob("ci/*-values.yaml"))
# The oldest Kubernetes the chart supports; helm otherwise assumes a version below kubeVersion.
KUBE_VERSION = "1.29.0"
NAMESPACE = "pulse"
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "Pod"}
BACKENDS = ("jaeger", "prometheus", "alertmanager", "loki", "victorialogs", "grafana", "collector")
VICTORIALOGS = ("--set", "logs.backend=victorialogs")
LOGS_PORTS = {"loki": 3100, "victorialogs": 9428}


def _template(*args: str, chart: Path = CHART) -> subprocess.CompletedProcess[str]:
    release = ("pulse", str(chart), "--namespace", NAMESPACE, "--kube-version", KUBE_VERSION)
    return subprocess.run(
        [tool("helm"), "template", *release, *args],
        capture_output=True,
        text=True,
        check=False,
    )


@cache
def render(*args: str) -> tuple[dict[str, Any], ...]:
    """The rendered objects for these `helm template` arguments (-f, --set …)."""
    result = _template(*args)
    assert result.returncode == 0, result.stderr
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def render_error(*args: str) -> str:
    result = _template(*args)
    assert result.returncode != 0, "render succeeded where it should fail"
    return result.stderr


def find(objects: tuple[dict[str, Any], ...], kind: str, name: str) -> dict[str, Any]:
    for obj in objects:
        if obj["kind"] == kind and obj["metadata"]["name"] == name:
            return obj
    raise AssertionError(
        f"no {kind}/{name} among {[(o['kind'], o['metadata']['name']) for o in objects]}"
    )


def component(obj: dict[str, Any]) -> str | None:
    return obj["metadata"].get("labels", {}).get("app.kubernetes.io/component")


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    return obj["spec"] if obj["kind"] == "Pod" else obj["spec"]["template"]["spec"]


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def container(objects: tuple[dict[str, Any], ...], deployment: str) -> dict[str, Any]:
    return pod_spec(find(objects, "Deployment", deployment))["containers"][0]


def quantity(value: str | int | float) -> float:
    """CPU in cores or memory in bytes."""
    text = str(value)
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 1e3, "M": 1e6, "G": 1e9}
    for suffix, factor in units.items():
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text)


def _versions_env() -> dict[str, str]:
    pairs = (
        line.split("=", 1)
        for line in (REPO / "deploy/local/versions.env").read_text().splitlines()
        if line and not line.startswith("#") and "=" in line
    )
    return {k.strip(): v.strip() for k, v in pairs}


def _values() -> dict[str, Any]:
    return yaml.safe_load((CHART / "values.yaml").read_text())


def _sync_module() -> Any:
    spec = importlib.util.spec_from_file_location("chart_sync", REPO / "deploy/helm/sync.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- the packaged files ------------------------------------------------------------------------


def test_packaged_files_are_identical_to_their_sources() -> None:
    sync = _sync_module()
    sources = sync.sources()
    assert "deploy/otel-collector/config.yaml" in sources
    assert any(s.startswith("alerts/rules/") for s in sources)
    for rel in sources:
        copy = sync.FILES_DIR / rel
        assert copy.is_file(), f"{rel} has no copy in the chart: run 'make chart-sync'"
        assert copy.read_bytes() == (REPO / rel).read_bytes(), (
            f"{rel}: copy differs, run 'make chart-sync'"
        )
    stale = set(sync.copies()) - set(sources)
    assert not stale, f"copies without a source: {sorted(stale)}; run 'make chart-sync'"
    assert sync.differences() == []


def test_sync_reports_each_kind_of_drift(tmp_path: Path) -> None:
    sync = _sync_module()
    repo, files = tmp_path / "repo", tmp_path / "files"
    (repo / "alerts/rules").mkdir(parents=True)
    (repo / "alerts/rules/a.yaml").write_text("groups: []\n")
    (repo / "alerts/rules/b.yaml").write_text("groups: []\n")
    assert sync.differences(repo, files) == [
        "missing copy: alerts/rules/a.yaml",
        "missing copy: alerts/rules/b.yaml",
    ]
    sync.sync(repo, files)
    assert sync.differences(repo, files) == []
    (repo / "alerts/rules/a.yaml").write_text("groups: [x]\n")
    (repo / "alerts/rules/b.yaml").unlink()
    assert sync.differences(repo, files) == [
        "differs from its source: alerts/rules/a.yaml",
        "no source any more: alerts/rules/b.yaml",
    ]
    assert sync.sync(repo, files) == ["copied alerts/rules/a.yaml", "removed alerts/rules/b.yaml"]
    assert sync.differences(repo, files) == []


def dashboard_files(backend: str) -> dict[str, str]:
    """The dashboards Grafana gets with `logs.backend=backend`: every dashboards/*.json and the
    logs dashboard of that backend."""
    files = [*(REPO / "dashboards").glob("*.json"), *(REPO / "dashboards" / backend).glob("*.json")]
    return {p.name: p.read_text() for p in files}


@pytest.mark.parametrize("backend", ["loki", "victorialogs"])
def test_grafana_gets_the_logs_dashboard_of_its_logs_backend(backend: str) -> None:
    objects = render("--set", f"logs.backend={backend}")
    dashboards = find(objects, "ConfigMap", "pulse-grafana-dashboards-json")["data"]
    assert dashboards == dashboard_files(backend)


def test_verbatim_files_reach_their_objects() -> None:
    objects = render()
    collector = find(objects, "ConfigMap", "pulse-collector")["data"]
    assert collector["config.yaml"] == (REPO / "deploy/otel-collector/config.yaml").read_text()
    assert collector["k8s.yaml"] == (REPO / "deploy/otel-collector/k8s.yaml").read_text()
    rules = find(objects, "ConfigMap", "pulse-prometheus-rules")["data"]
    assert rules == {p.name: p.read_text() for p in (REPO / "alerts/rules").glob("*.yaml")}
    am = find(objects, "ConfigMap", "pulse-alertmanager")["data"]["alertmanager.yml"]
    assert am == (REPO / "alerts/alertmanager/alertmanager.yml").read_text()
    templates = find(objects, "ConfigMap", "pulse-alertmanager-templates")["data"]
    assert set(templates) == {p.name for p in (REPO / "alerts/alertmanager/templates").glob("*")}
    dashboards = find(objects, "ConfigMap", "pulse-grafana-dashboards-json")["data"]
    assert dashboards == dashboard_files("loki")


def test_alertmanager_gets_the_paths_its_config_reads() -> None:
    objects = render()
    config = yaml.safe_load(
        find(objects, "ConfigMap", "pulse-alertmanager")["data"]["alertmanager.yml"]
    )
    spec = pod_spec(find(objects, "Deployment", "pulse-alertmanager"))
    mounts = {m["name"]: m["mountPath"] for m in spec["containers"][0]["volumeMounts"]}
    secret = find(objects, "Secret", "pulse-alertmanager-receivers")
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            path = Path(hook["url_file"])
            assert str(path.parent) == mounts["receivers"]
            assert path.name in secret["stringData"]
    for pattern in config["templates"]:
        assert str(Path(pattern).parent) == mounts["templates"]


# --- switching backends off --------------------------------------------------------------------

EXTERNAL = {
    "jaeger": [
        "--set",
        "jaeger.external.otlpEndpoint=traces.example:4317",
        "--set",
        "jaeger.external.queryUrl=http://traces.example:16686",
    ],
    "prometheus": ["--set", "prometheus.external.url=http://metrics.example:9090"],
    "loki": ["--set", "loki.external.url=http://logs.example:3100"],
    "alertmanager": ["--set", "alertmanager.external.url=http://alerts.example:9093"],
}
COLLECTOR_ENV = {
    "jaeger": ("JAEGER_OTLP_ENDPOINT", "traces.example:4317"),
    "prometheus": ("PROMETHEUS_OTLP_ENDPOINT", "http://metrics.example:9090/api/v1/otlp"),
    "loki": ("LOGS_OTLP_ENDPOINT", "http://logs.example:3100/otlp"),
}


@pytest.mark.parametrize("backend", sorted(EXTERNAL))
def test_a_backend_switched_off_is_gone_and_its_consumers_follow(backend: str) -> None:
    bundled = render()
    objects = render("--set", f"{backend}.enabled=false", *EXTERNAL[backend])
    assert any(component(o) == backend for o in bundled)
    assert [o["metadata"]["name"] for o in objects if component(o) == backend] == []
    # The rest is untouched.
    others = {(o["kind"], o["metadata"]["name"]) for o in bundled if component(o) != backend}
    assert others <= {(o["kind"], o["metadata"]["name"]) for o in objects}

    collector = env_of(container(objects, "pulse-collector"))
    if backend in COLLECTOR_ENV:
        name, expected = COLLECTOR_ENV[backend]
        assert collector[name] == expected
        assert env_of(container(bundled, "pulse-collector"))[name] != expected
    grafana = env_of(container(objects, "pulse-grafana"))
    expected_ui = {
        "jaeger": ("PULSE_JAEGER_URL", "http://traces.example:16686"),
        "prometheus": ("PULSE_PROMETHEUS_URL", "http://metrics.example:9090"),
        "loki": ("PULSE_LOGS_URL", "http://logs.example:3100"),
        "alertmanager": ("PULSE_ALERTMANAGER_URL", "http://alerts.example:9093"),
    }
    name, url = expected_ui[backend]
    assert grafana[name] == url
    if backend == "alertmanager":
        prometheus = yaml.safe_load(
            find(objects, "ConfigMap", "pulse-prometheus")["data"]["prometheus.yml"]
        )
        assert prometheus["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == [
            "alerts.example:9093"
        ]
        jobs = {job["job_name"] for job in prometheus["scrape_configs"]}
        assert "alertmanager" not in jobs


def test_bundled_endpoints_point_at_the_bundled_services() -> None:
    objects = render()
    collector = env_of(container(objects, "pulse-collector"))
    assert collector["JAEGER_OTLP_ENDPOINT"] == f"pulse-jaeger.{NAMESPACE}.svc:4317"
    assert (
        collector["PROMETHEUS_OTLP_ENDPOINT"]
        == f"http://pulse-prometheus.{NAMESPACE}.svc:9090/api/v1/otlp"
    )
    assert collector["LOGS_OTLP_ENDPOINT"] == f"http://pulse-loki.{NAMESPACE}.svc:3100/otlp"
    assert env_of(container(objects, "pulse"))["OTEL_EXPORTER_OTLP_ENDPOINT"] == (
        f"http://pulse-collector.{NAMESPACE}.svc:4317"
    )
    prometheus = yaml.safe_load(
        find(objects, "ConfigMap", "pulse-prometheus")["data"]["prometheus.yml"]
    )
    jobs = {job["job_name"] for job in prometheus["scrape_configs"]}
    # The job names Pulse's rules select on.
    assert {"otelcol", "jaeger", "loki", "alertmanager", "prometheus"} <= jobs
    args = container(objects, "pulse-prometheus")["args"]
    assert "--web.enable-otlp-receiver" in args
    assert "--enable-feature=exemplar-storage" in args


def test_logs_backend_victorialogs_replaces_loki_and_the_collector_follows() -> None:
    objects = render(*VICTORIALOGS)
    assert not [o for o in objects if component(o) == "loki"]
    deployment = find(objects, "Deployment", "pulse-victorialogs")
    assert find(objects, "Service", "pulse-victorialogs")["spec"]["ports"][0]["port"] == 9428
    (vl,) = pod_spec(deployment)["containers"]
    values = _values()["victorialogs"]
    assert vl["image"] == f"{values['image']['repository']}:{values['image']['tag']}"
    assert vl["args"][:2] == ["-httpListenAddr=:9428", "-storageDataPath=/victoria-logs-data"]
    assert f"-retentionPeriod={values['retention']}" in vl["args"]
    assert f"-futureRetention={values['futureRetention']}" in vl["args"]
    assert f"-retention.maxDiskSpaceUsageBytes={values['maxDiskSpaceUsage']}" in vl["args"]
    assert vl["readinessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert vl["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert vl["resources"] == values["resources"]
    mounts = {m["mountPath"]: m["name"] for m in vl["volumeMounts"]}
    volumes = {v["name"]: v for v in pod_spec(deployment)["volumes"]}
    data = volumes[mounts["/victoria-logs-data"]]["emptyDir"]
    assert data["sizeLimit"] == values["storageSizeLimit"]
    # VictoriaLogs frees old days before the kubelet would evict it for its emptyDir.
    assert quantity(values["maxDiskSpaceUsage"].removesuffix("B")) < quantity(data["sizeLimit"])
    collector = env_of(container(objects, "pulse-collector"))
    assert collector["LOGS_OTLP_ENDPOINT"] == (
        f"http://pulse-victorialogs.{NAMESPACE}.svc:9428/insert/opentelemetry"
    )
    prometheus = yaml.safe_load(
        find(objects, "ConfigMap", "pulse-prometheus")["data"]["prometheus.yml"]
    )
    targets = {
        j["job_name"]: j["static_configs"][0]["targets"] for j in prometheus["scrape_configs"]
    }
    assert targets["victorialogs"] == [f"pulse-victorialogs.{NAMESPACE}.svc:9428"]
    assert "loki" not in targets


def test_the_loki_config_fits_its_pod() -> None:
    """Loki is never run here (AGPL): the rendered config must at least listen where the Service
    and probes point, and keep its data on the pod's writable volumes."""
    objects = render()
    config = yaml.safe_load(find(objects, "ConfigMap", "pulse-loki")["data"]["loki.yaml"])
    deployment = find(objects, "Deployment", "pulse-loki")
    (loki,) = pod_spec(deployment)["containers"]
    ports = {p["name"]: p["containerPort"] for p in loki["ports"]}
    assert config["server"]["http_listen_port"] == ports["http"] == 3100
    assert config["server"]["grpc_listen_port"] == ports["grpc"]
    assert loki["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    assert "-config.file=/etc/loki/loki.yaml" in loki["args"]
    writable = [m["mountPath"] for m in loki["volumeMounts"] if not m.get("readOnly")]
    storage = config["common"]["storage"]["filesystem"]
    for path in (
        config["common"]["path_prefix"],
        storage["chunks_directory"],
        storage["rules_directory"],
        config["compactor"]["working_directory"],
    ):
        assert any(path == w or path.startswith(w + "/") for w in writable), path
    assert config["limits_config"]["allow_structured_metadata"] is True  # OTLP attributes


def test_an_external_victorialogs_gets_the_logs_and_nothing_is_bundled() -> None:
    objects = render("-f", str(CHART / "ci/external-victorialogs-values.yaml"))
    assert not [o for o in objects if component(o) in ("loki", "victorialogs")]
    assert env_of(container(objects, "pulse-collector"))["LOGS_OTLP_ENDPOINT"] == (
        "http://victoria-logs.logging.svc:9428/insert/opentelemetry"
    )
    assert env_of(container(objects, "pulse-grafana"))["PULSE_LOGS_URL"] == (
        "http://victoria-logs.logging.svc:9428"
    )


def test_collector_switched_off_sends_pulse_to_the_external_collector() -> None:
    objects = render(
        "--set",
        "collector.enabled=false",
        "--set",
        "collector.external.otlpEndpoint=http://otel.example:4317",
    )
    assert not [o for o in objects if component(o) == "collector"]
    assert not [o for o in objects if o["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    for name in ("pulse", "pulse-loadgen"):
        assert (
            env_of(container(objects, name))["OTEL_EXPORTER_OTLP_ENDPOINT"]
            == "http://otel.example:4317"
        )


def test_pulse_alone_without_a_collector_turns_its_telemetry_off() -> None:
    args = [a for b in (*BACKENDS, "loadgen") for a in ("--set", f"{b}.enabled=false")]
    objects = render(*args)
    assert {component(o) for o in objects} == {"server", "test", "doctor"}
    config = yaml.safe_load(find(objects, "ConfigMap", "pulse")["data"]["pulse.yaml"])
    assert config["telemetry"]["enabled"] is False
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in env_of(container(objects, "pulse"))


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ["--set", "jaeger.enabled=false", "--set", "grafana.enabled=false"],
            "jaeger.external.otlpEndpoint",
        ),
        (
            [
                "--set",
                "jaeger.enabled=false",
                "--set",
                "jaeger.external.otlpEndpoint=t.example:4317",
            ],
            "jaeger.external.queryUrl",
        ),
        (["--set", "prometheus.enabled=false"], "prometheus.external.url"),
        (["--set", "loki.enabled=false"], "loki.external.url"),
        ([*VICTORIALOGS, "--set", "victorialogs.enabled=false"], "victorialogs.external.url"),
        (["--set", "alertmanager.enabled=false"], "alertmanager.external.url"),
    ],
)
def test_a_backend_off_without_an_endpoint_is_refused(flags: list[str], message: str) -> None:
    assert message in render_error(*flags)


def test_collector_gets_the_kubernetes_layers_and_read_only_rbac() -> None:
    objects = render()
    data = find(objects, "ConfigMap", "pulse-collector")["data"]
    args = container(objects, "pulse-collector")["args"]
    assert args == [
        "--config=/etc/otelcol/config.yaml",
        "--config=/etc/otelcol/k8s.yaml",
        "--config=/etc/otelcol/k8s-attributes.yaml",
    ]
    k8s = yaml.safe_load(data["k8s.yaml"])
    layer = yaml.safe_load(data["k8s-attributes.yaml"])
    assert "k8s_attributes" in layer["processors"]
    for name, pipeline in k8s["service"]["pipelines"].items():
        expected = list(pipeline["processors"])
        expected.insert(expected.index("memory_limiter") + 1, "k8s_attributes")
        assert layer["service"]["pipelines"][name]["processors"] == expected
    role = next(o for o in objects if o["kind"] == "ClusterRole")
    granted = {
        (g, r): set(rule["verbs"])
        for rule in role["rules"]
        for g in rule["apiGroups"]
        for r in rule["resources"]
    }
    assert granted == {
        (g, r): {"get", "list", "watch"}
        for g, r in [("", "pods"), ("", "namespaces"), ("", "nodes"), ("apps", "replicasets")]
    }
    binding = next(o for o in objects if o["kind"] == "ClusterRoleBinding")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "pulse-collector", "namespace": NAMESPACE}
    ]
    assert (
        pod_spec(find(objects, "Deployment", "pulse-collector"))["automountServiceAccountToken"]
        is True
    )
    off = render("--set", "collector.k8sAttributes=false")
    assert "k8s-attributes.yaml" not in find(off, "ConfigMap", "pulse-collector")["data"]
    assert not [o for o in off if o["kind"] == "ClusterRole"]


# --- Pulse ---------------------------------------------------------------------------------------


def test_pulse_deployment_probes_drain_and_downward_api() -> None:
    objects = render()
    spec = pod_spec(find(objects, "Deployment", "pulse"))
    pulse = spec["containers"][0]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert pulse[probe]["grpc"] == {"port": 50051}
    assert {p["containerPort"] for p in pulse["ports"]} == {50051, 9464}
    grace = GrpcSettings().shutdown_grace_s
    assert _values()["pulse"]["config"]["grpc"]["shutdown_grace_s"] == grace
    pre_stop = int(pulse["lifecycle"]["preStop"]["exec"]["command"][1])
    assert spec["terminationGracePeriodSeconds"] > pre_stop + grace
    attributes = env_of(pulse)["OTEL_RESOURCE_ATTRIBUTES"]
    for key in ("k8s.pod.name", "k8s.namespace.name", "k8s.node.name"):
        assert f"{key}=$(" in attributes
    fields = {
        e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in pulse["env"] if "valueFrom" in e
    }
    assert fields == {
        "K8S_POD_NAME": "metadata.name",
        "K8S_NAMESPACE_NAME": "metadata.namespace",
        "K8S_NODE_NAME": "spec.nodeName",
    }
    assert pulse["args"] == ["serve", "--config", "/etc/pulse/config/pulse.yaml"]


def test_a_longer_drain_lengthens_the_grace_period() -> None:
    spec = pod_spec(
        find(render("--set", "pulse.config.grpc.shutdown_grace_s=90.5"), "Deployment", "pulse")
    )
    assert spec["terminationGracePeriodSeconds"] > 90.5 + 5


@pytest.mark.parametrize("scenario", ["defaults", "pulse-only"])
def test_rendered_pulse_config_is_valid_for_pulse(scenario: str, tmp_path: Path) -> None:
    objects = render("-f", str(CHART / f"ci/{scenario}-values.yaml"))
    path = tmp_path / "pulse.yaml"
    path.write_text(find(objects, "ConfigMap", "pulse")["data"]["pulse.yaml"])
    settings = load(path)
    assert (settings.grpc.port, settings.admin.port) == (50051, 9464)
    assert str(settings.data_dir) == "/var/lib/pulse"


def test_auth_and_tls_wire_files_secrets_and_probes() -> None:
    objects = render("-f", str(CHART / "ci/secure-values.yaml"))
    config = yaml.safe_load(find(objects, "ConfigMap", "pulse")["data"]["pulse.yaml"])
    assert config["auth"] == {
        "tokens_file": "/etc/pulse/auth/tokens",
        "api_keys_file": "/etc/pulse/auth/api-keys",
    }
    assert config["tls"] == {
        "cert_file": "/etc/pulse/tls/tls.crt",
        "key_file": "/etc/pulse/tls/tls.key",
        "client_ca_file": "/etc/pulse/tls/ca.crt",
    }
    auth = find(objects, "Secret", "pulse-auth")
    assert set(auth["data"]) == {"tokens", "api-keys", "client-token"}
    tls = find(objects, "Secret", "pulse-tls")
    assert set(tls["data"]) == {"ca.crt", "tls.crt", "tls.key", "client.crt", "client.key"}
    pulse = container(objects, "pulse")
    # Kubelet gRPC probes cannot do TLS.
    assert "grpc" not in pulse["readinessProbe"]
    assert pulse["readinessProbe"]["httpGet"]["port"] == "admin"
    # The admin port follows gRPC onto TLS: probes and the Service say HTTPS.
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert pulse[probe]["httpGet"]["scheme"] == "HTTPS", probe
    admin = next(
        p for p in find(objects, "Service", "pulse")["spec"]["ports"] if p["name"] == "admin"
    )
    assert admin["appProtocol"] == "https"
    mounts = {m["mountPath"] for m in pulse["volumeMounts"]}
    assert {"/etc/pulse/auth", "/etc/pulse/tls"} <= mounts
    loadgen = container(objects, "pulse-loadgen")
    assert loadgen["args"][:7] == [
        "loadgen",
        "--tls-ca",
        "/etc/pulse/tls/ca.crt",
        "--tls-cert",
        "/etc/pulse/tls/client.crt",
        "--tls-key",
        "/etc/pulse/tls/client.key",
    ]
    token = next(e for e in loadgen["env"] if e["name"] == "PULSE_TOKEN")
    assert token["valueFrom"]["secretKeyRef"] == {"name": "pulse-auth", "key": "client-token"}
    assert find(objects, "NetworkPolicy", "pulse")["spec"]["policyTypes"] == ["Ingress", "Egress"]


def test_existing_secrets_are_used_and_nothing_is_generated() -> None:
    objects = render(
        "--set",
        "pulse.auth.enabled=true",
        "--set",
        "pulse.auth.existingSecret=my-auth",
        "--set",
        "pulse.tls.enabled=true",
        "--set",
        "pulse.tls.existingSecret=my-tls",
        "--set",
        "grafana.existingSecret=my-grafana",
        "--set",
        "alertmanager.existingSecret=my-receivers",
    )
    assert [o["metadata"]["name"] for o in objects if o["kind"] == "Secret"] == []
    volumes = {v["name"]: v for v in pod_spec(find(objects, "Deployment", "pulse"))["volumes"]}
    assert volumes["auth"]["secret"]["secretName"] == "my-auth"
    assert volumes["tls"]["secret"]["secretName"] == "my-tls"
    grafana = {
        v["name"]: v for v in pod_spec(find(objects, "Deployment", "pulse-grafana"))["volumes"]
    }
    assert grafana["admin"]["secret"]["secretName"] == "my-grafana"
    am = {
        v["name"]: v for v in pod_spec(find(objects, "Deployment", "pulse-alertmanager"))["volumes"]
    }
    assert am["receivers"]["secret"]["secretName"] == "my-receivers"


def test_no_secret_value_in_values_or_environment() -> None:
    text = (CHART / "values.yaml").read_text()
    assert not re.search(r"(?im)^\s*(password|token|api_?key|secret)\s*:\s*\S", text)
    for scenario in SCENARIOS:
        for obj in render("-f", str(scenario)):
            if obj["kind"] not in WORKLOAD_KINDS:
                continue
            for c in pod_spec(obj)["containers"]:
                for e in c.get("env", []):
                    if re.search(r"PASSWORD|TOKEN|KEY|SECRET", e["name"]) and not e[
                        "name"
                    ].endswith("_FILE"):
                        assert "value" not in e, (
                            f"{obj['metadata']['name']}: {e['name']} is a literal"
                        )


# --- secure defaults, labels, schema -----------------------------------------------------------


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda p: p.stem)
def test_every_container_is_locked_down(scenario: Path) -> None:
    workloads = [o for o in render("-f", str(scenario)) if o["kind"] in WORKLOAD_KINDS]
    assert workloads
    for obj in workloads:
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        spec = pod_spec(obj)
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, name
        assert pod["runAsUser"] >= 10000, name
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec["automountServiceAccountToken"] is (
            obj["metadata"]["name"] in {"pulse-collector", "pulse-doctor"}
        ), name
        for c in spec.get("initContainers", []) + spec["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["runAsNonRoot"] is True, name
            assert sc["capabilities"] == {"drop": ["ALL"]}, name
            assert sc.get("privileged", False) is False, name
            for kind in ("requests", "limits"):
                assert set(c["resources"][kind]) >= {"cpu", "memory"}, f"{name}: {kind}"
                for resource in ("cpu", "memory"):
                    assert quantity(c["resources"]["requests"][resource]) <= quantity(
                        c["resources"]["limits"][resource]
                    ), f"{name}: {resource}"
            assert ":" in c["image"], name
            assert not c["image"].endswith(":latest"), name


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda p: p.stem)
def test_every_object_carries_the_recommended_labels(scenario: Path) -> None:
    for obj in render("-f", str(scenario)):
        labels = obj["metadata"]["labels"]
        for key in (
            "app.kubernetes.io/name",
            "app.kubernetes.io/instance",
            "app.kubernetes.io/version",
            "app.kubernetes.io/component",
            "app.kubernetes.io/part-of",
            "app.kubernetes.io/managed-by",
            "helm.sh/chart",
        ):
            assert labels.get(key), f"{obj['kind']}/{obj['metadata']['name']} lacks {key}"
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        if obj["kind"] not in ("ClusterRole", "ClusterRoleBinding"):
            assert obj["metadata"]["namespace"] == NAMESPACE


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--set", "pulse.replicsa=2"], "additional properties 'replicsa' not allowed"),
        (["--set", "prometheus.enabeld=false"], "additional properties 'enabeld' not allowed"),
        (["--set", "pulse.config.grcp.port=1"], "additional properties 'grcp' not allowed"),
        (["--set", "pulse.resources.requests.cpuu=1"], "additional properties 'cpuu' not allowed"),
        (["--set-string", "pulse.replicas=two"], "want integer"),
        (["--set-string", "loki.enabled=yes"], "want boolean"),
        (["--set", "prometheus.retention=forever"], "retention"),
        (["--set", "jaeger.image.pullPolicy=Sometimes"], "pullPolicy"),
        (["--set", "logs.backend=elasticsearch"], "value must be one of 'loki', 'victorialogs'"),
        (["--set", "victorialogs.retention=12h"], "retention"),
        (["--set", "victorialogs.maxDiskSpaceUsage=1.5G"], "maxDiskSpaceUsage"),
    ],
)
def test_the_schema_rejects_typos_and_wrong_types(flags: list[str], message: str) -> None:
    assert message in render_error(*flags)


def test_schema_is_strict_everywhere() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    loose = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            if (
                node.get("type") == "object"
                and "properties" in node
                and node.get("additionalProperties") is not False
            ):
                loose.append(where)
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}/{i}")

    walk(schema, "")
    assert loose == []


def test_schema_knows_exactly_pulses_configuration_sections() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    sections = set(schema["properties"]["pulse"]["properties"]["config"]["properties"])
    assert sections == set(Settings.model_fields)


# --- sizing and versions -----------------------------------------------------------------------


def _total_requests(objects: tuple[dict[str, Any], ...]) -> tuple[float, float]:
    cpu = memory = 0.0
    for obj in objects:
        if obj["kind"] != "Deployment":
            continue
        replicas = obj["spec"].get("replicas", 1)
        for c in pod_spec(obj)["containers"]:
            cpu += replicas * quantity(c["resources"]["requests"]["cpu"])
            memory += replicas * quantity(c["resources"]["requests"]["memory"])
    return cpu, memory


def test_total_requests_match_the_readme() -> None:
    cpu, memory = _total_requests(render())
    readme = (CHART / "README.md").read_text()
    match = re.search(r"Total requests: \*\*(\d+)m CPU, (\d+)Mi memory\*\*", readme)
    assert match, "README.md states no 'Total requests: **<n>m CPU, <n>Mi memory**'"
    assert math.isclose(cpu, int(match[1]) / 1000), f"chart requests {cpu * 1000:.0f}m CPU"
    assert math.isclose(memory, int(match[2]) * 2**20), f"chart requests {memory / 2**20:.0f}Mi"


def test_collector_memory_limiter_stays_below_its_memory_limit() -> None:
    values = _values()["collector"]
    limit_mib = quantity(values["resources"]["limits"]["memory"]) / 2**20
    assert values["memoryLimitMib"] + values["memorySpikeMib"] <= limit_mib
    assert values["memoryLimitMib"] <= 0.85 * limit_mib


def test_image_tags_agree_with_versions_env() -> None:
    pins, values = _versions_env(), _values()
    assert values["collector"]["image"]["tag"] == pins["OTELCOL_VERSION"]
    assert values["alertmanager"]["image"]["tag"] == f"v{pins['ALERTMANAGER_VERSION']}"
    assert values["loki"]["image"]["tag"] == pins["LOKI_VERSION"]
    assert values["victorialogs"]["image"]["tag"] == f"v{pins['VICTORIALOGS_VERSION']}"
    # Prometheus module tags v0.3xx.0 mirror release v3.xx.0.
    major, minor, patch = pins["PROMETHEUS_VERSION"].split(".")
    assert major == "0"
    assert minor.startswith("3")
    assert values["prometheus"]["image"]["tag"] == f"v3.{int(minor[1:])}.{patch}"
    # Jaeger v1.x.y and v2.(x-63).y are the same release (v1.76.0 / v2.13.0).
    _, minor, patch = pins["JAEGER_MODULE_VERSION"].split(".")
    assert values["jaeger"]["image"]["tag"] == f"2.{int(minor) - 63}.{patch}"
    assert "contrib" in values["collector"]["image"]["repository"]


def test_app_version_is_pulses_version() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert chart["appVersion"] == project["version"]
    assert chart["kubeVersion"].startswith(">=1.29")
    assert container(render(), "pulse")["image"] == f"pulse:{project['version']}"


# --- integrations and the chart test -----------------------------------------------------------


def test_operator_integration_objects() -> None:
    objects = render("-f", str(CHART / "ci/operator-values.yaml"))
    rules = [o for o in objects if o["kind"] == "PrometheusRule"]
    sources = {
        p.stem: yaml.safe_load(p.read_text()) for p in (REPO / "alerts/rules").glob("*.yaml")
    }
    assert {r["metadata"]["name"].removeprefix("pulse-") for r in rules} == set(sources)
    for rule in rules:
        assert rule["spec"] == sources[rule["metadata"]["name"].removeprefix("pulse-")]
        assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    monitors = {o["metadata"]["name"]: o for o in objects if o["kind"] == "ServiceMonitor"}
    jobs = {
        name: m["spec"]["endpoints"][0]["relabelings"][0]["replacement"]
        for name, m in monitors.items()
    }
    assert jobs == {"pulse-collector": "otelcol", "pulse-jaeger": "jaeger", "pulse-loki": "loki"}
    with_victorialogs = render("-f", str(CHART / "ci/operator-values.yaml"), *VICTORIALOGS)
    monitored = {o["metadata"]["name"] for o in with_victorialogs if o["kind"] == "ServiceMonitor"}
    assert monitored == {"pulse-collector", "pulse-jaeger", "pulse-victorialogs"}
    dashboards = [
        o
        for o in objects
        if o["kind"] == "ConfigMap" and "grafana_dashboard" in o["metadata"]["labels"]
    ]
    expected = dashboard_files("loki")
    assert len(dashboards) == len(expected)
    for cm in dashboards:
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        ((name, text),) = cm["data"].items()
        assert text == expected[name]
    assert not [o for o in render() if o["kind"] in ("PrometheusRule", "ServiceMonitor")]


def _expand(node: Any, env: dict[str, str]) -> Any:
    """Grafana's expansion of provisioning values: ${NAME} from the environment, $$ a literal $."""
    if isinstance(node, dict):
        return {k: _expand(v, env) for k, v in node.items()}
    if isinstance(node, list):
        return [_expand(v, env) for v in node]
    if isinstance(node, str):
        for name in re.findall(r"(?<!\$)\$\{(\w+)\}", node):
            assert name in env, f"Grafana has no {name} for its provisioning ({node})"
        return re.sub(r"(?<!\$)\$\{(\w+)\}", lambda m: env[m[1]], node).replace("$$", "$")
    return node


def _provisioned_datasources(objects: tuple[dict[str, Any], ...]) -> dict[str, dict[str, Any]]:
    """The datasources Grafana provisions, by uid, as it reads them."""
    env = env_of(container(objects, "pulse-grafana"))
    data = find(objects, "ConfigMap", "pulse-grafana-datasources")["data"]
    sources = {}
    for text in data.values():
        for source in _expand(yaml.safe_load(text), env)["datasources"]:
            sources[source["uid"]] = source
    return sources


def test_grafana_reads_the_provisioning_and_its_password_from_files() -> None:
    objects = render()
    grafana = container(objects, "pulse-grafana")
    env = env_of(grafana)
    assert "GF_SECURITY_ADMIN_PASSWORD" not in env
    assert env["GF_SECURITY_ADMIN_PASSWORD__FILE"] == "/etc/grafana/secrets/admin-password"
    datasources = find(objects, "ConfigMap", "pulse-grafana-datasources")["data"]
    assert set(datasources) == {"pulse.yaml", "loki.yaml"}
    provisioned = _provisioned_datasources(objects)
    assert set(provisioned) == {"prometheus", "loki", "jaeger", "alertmanager"}
    for source in provisioned.values():
        assert source["url"].startswith("http://"), source
    providers = yaml.safe_load(
        next(iter(find(objects, "ConfigMap", "pulse-grafana-dashboards")["data"].values()))
    )
    mounts = {m["name"]: m["mountPath"] for m in grafana["volumeMounts"]}
    assert providers["providers"][0]["options"]["path"] == mounts["dashboards"]


@pytest.mark.parametrize(
    ("flags", "backend", "kind", "service_field"),
    [
        ((), "loki", "loki", "service_name"),
        (VICTORIALOGS, "victorialogs", "victoriametrics-logs-datasource", "service.name"),
    ],
)
def test_grafana_gets_the_logs_datasource_of_the_backend_and_links_to_it(
    flags: tuple[str, ...], backend: str, kind: str, service_field: str
) -> None:
    objects = render(*flags)
    sources = _provisioned_datasources(objects)
    assert set(sources) == {"prometheus", "jaeger", "alertmanager", backend}
    logs = sources[backend]
    assert logs["type"] == kind
    assert logs["url"] == f"http://pulse-{backend}.{NAMESPACE}.svc:{LOGS_PORTS[backend]}"
    derived = logs["jsonData"]["derivedFields"]
    assert [(d["matcherType"], d["matcherRegex"], d["datasourceUid"]) for d in derived] == [
        ("label", "trace_id", "jaeger")
    ]
    to_logs = sources["jaeger"]["jsonData"]["tracesToLogsV2"]
    assert to_logs["datasourceUid"] == backend
    assert to_logs["filterByTraceID"] is True
    assert to_logs["tags"] == [{"key": "service.name", "value": service_field}]


def test_grafana_installs_the_victorialogs_plugin_only_for_victorialogs() -> None:
    assert "initContainers" not in pod_spec(find(render(), "Deployment", "pulse-grafana"))
    pod = pod_spec(find(render(*VICTORIALOGS), "Deployment", "pulse-grafana"))
    (init,) = pod["initContainers"]
    grafana = pod["containers"][0]
    assert init["image"] == grafana["image"]
    version = _values()["victorialogs"]["grafanaPlugin"]["version"]
    assert init["command"][-4:] == [
        "plugins",
        "install",
        "victoriametrics-logs-datasource",
        version,
    ]
    plugins = env_of(grafana)["GF_PATHS_PLUGINS"]
    assert f"--pluginsDir={plugins}" in init["command"]
    data = {m["name"]: m["mountPath"] for m in grafana["volumeMounts"]}["data"]
    assert {"name": "data", "mountPath": data} in init["volumeMounts"]
    assert plugins.startswith(data + "/")
    # Air-gapped: the zip from a server the cluster reaches, no catalogue version.
    offline = pod_spec(
        find(
            render("-f", str(CHART / "ci/external-victorialogs-values.yaml")),
            "Deployment",
            "pulse-grafana",
        )
    )["initContainers"][0]["command"]
    assert offline[-3:] == ["plugins", "install", "victoriametrics-logs-datasource"]
    assert any(arg.startswith("--pluginUrl=http://") for arg in offline)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda p: p.stem)
def test_notes_give_the_next_commands(scenario: Path, tmp_path: Path) -> None:
    # `helm template` never renders NOTES.txt: render a copy of the chart with the notes wrapped
    # in a template of their own.
    chart = tmp_path / "pulse"
    shutil.copytree(CHART, chart)
    notes = (chart / "templates/NOTES.txt").read_text()
    (chart / "templates/NOTES.txt").unlink()
    (chart / "templates/_notes.tpl").write_text(
        '{{- define "notes.check" -}}\n' + notes + "{{- end }}\n"
    )
    (chart / "templates/notes-check.yaml").write_text(
        'notes: {{ include "notes.check" . | toJson }}\n'
    )
    result = _template(
        "-f", str(scenario), "--show-only", "templates/notes-check.yaml", chart=chart
    )
    assert result.returncode == 0, result.stderr
    text = yaml.safe_load(result.stdout)["notes"]
    assert f"helm test pulse -n {NAMESPACE}" in text
    assert f"kubectl -n {NAMESPACE} port-forward svc/pulse 50051:50051 9464:9464" in text
    # Under TLS the admin port serves HTTPS with the same certificate.
    tls = (yaml.safe_load(scenario.read_text()) or {}).get("pulse", {}).get("tls", {})
    scheme = "https" if tls.get("enabled") else "http"
    assert f"admin  {scheme}://localhost:9464/metrics" in text
    # Every bundled UI or API a person opens (the collector has none).
    for obj in render("-f", str(scenario)):
        if obj["kind"] == "Service" and obj["metadata"]["name"] not in ("pulse", "pulse-collector"):
            assert f"port-forward svc/{obj['metadata']['name']} " in text


def test_helm_test_checks_health_and_prometheus() -> None:
    pod = find(render(), "Pod", "pulse-test")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    check = pod["spec"]["containers"][0]
    script = check["command"][2]
    assert "HealthStub" in script
    assert "/api/v1/query" in script
    compile(script, "helm-test", "exec")
    env = env_of(check)
    assert env["PROMETHEUS_URL"] == f"http://pulse-prometheus.{NAMESPACE}.svc:9090"
    assert env["PULSE_TARGET"] == f"pulse.{NAMESPACE}.svc:50051"
    alone = find(render("-f", str(CHART / "ci/pulse-only-values.yaml")), "Pod", "pulse-test")
    assert env_of(alone["spec"]["containers"][0])["PROMETHEUS_URL"] == ""


def _doctor_args(*flags: str) -> Any:
    """The doctor pod's arguments as the real `pulse` command line parses them."""
    pod = find(render(*flags), "Pod", "pulse-doctor")
    container = pod["spec"]["containers"][0]
    assert "command" not in container, "the image's entrypoint is `pulse`"
    return build_parser().parse_args(container["args"])


def test_helm_test_runs_the_doctor_with_a_read_only_service_account() -> None:
    objects = render()
    doctor = {
        kind: find(objects, kind, "pulse-doctor")
        for kind in ("ServiceAccount", "Role", "RoleBinding", "Pod")
    }
    for kind, obj in doctor.items():
        assert obj["metadata"]["annotations"]["helm.sh/hook"] == "test", kind
    hook_weight = doctor["Role"]["metadata"]["annotations"]["helm.sh/hook-weight"]
    assert int(hook_weight) < 0, "RBAC must exist before the pod starts"
    assert doctor["Role"]["rules"] == [
        {
            "apiGroups": ["apps"],
            "resources": ["deployments", "statefulsets"],
            "verbs": ["get", "list"],
        },
        {"apiGroups": [""], "resources": ["services"], "verbs": ["get", "list"]},
    ]
    binding = doctor["RoleBinding"]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "pulse-doctor",
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "pulse-doctor", "namespace": NAMESPACE}
    ]
    assert doctor["Pod"]["spec"]["serviceAccountName"] == "pulse-doctor"
    assert not any(
        o["kind"] == "ClusterRoleBinding" and "doctor" in o["metadata"]["name"] for o in objects
    )
    args = _doctor_args()
    assert (args.command, args.in_cluster, args.namespace, args.release) == (
        "doctor",
        True,
        NAMESPACE,
        "pulse",
    )
    assert args.wait == _values()["tests"]["telemetryTimeoutSeconds"]
    # Bundled backends are found in the cluster by their labels.
    assert (args.skip, args.prometheus, args.jaeger, args.loki, args.victorialogs) == (
        [],
        None,
        None,
        None,
        None,
    )


@pytest.mark.parametrize(
    ("scenario", "skip", "urls"),
    [
        (
            "external-backends",
            [],
            {
                "prometheus": "http://prometheus-operated.monitoring.svc:9090",
                "jaeger": "http://jaeger-query.tracing.svc:16686",
                "loki": "http://loki-gateway.logging.svc:80",
            },
        ),
        (
            "operator",
            [],
            {"prometheus": "http://kube-prometheus-stack-prometheus.monitoring.svc:9090"},
        ),
        ("pulse-only", ["prometheus", "jaeger", "loki"], {}),
        ("victorialogs", [], {}),
        (
            "external-victorialogs",
            [],
            {"victorialogs": "http://victoria-logs.logging.svc:9428"},
        ),
    ],
)
def test_the_doctor_reads_external_backends_and_skips_unknown_ones(
    scenario: str, skip: list[str], urls: dict[str, str]
) -> None:
    args = _doctor_args("-f", str(CHART / f"ci/{scenario}-values.yaml"))
    assert args.skip == skip
    assert {
        b: getattr(args, b)
        for b in ("prometheus", "jaeger", "loki", "victorialogs")
        if getattr(args, b)
    } == urls


def test_a_trace_backend_without_a_query_url_is_skipped_by_the_doctor() -> None:
    args = _doctor_args(
        "--set",
        "jaeger.enabled=false",
        "--set",
        "jaeger.external.otlpEndpoint=tempo.tracing:4317",
        "--set",
        "grafana.enabled=false",
    )
    assert args.skip == ["jaeger"]


def test_under_tls_the_doctor_verifies_the_admin_port_with_the_ca_alone() -> None:
    secure = ("-f", str(CHART / "ci/secure-values.yaml"))
    assert _doctor_args(*secure).tls_ca == "/etc/pulse/tls/ca.crt"
    assert _doctor_args().tls_ca is None
    pod = find(render(*secure), "Pod", "pulse-doctor")["spec"]
    [volume] = [v for v in pod["volumes"] if v["name"] == "tls-ca"]
    assert volume["secret"]["items"] == [{"key": "ca.crt", "path": "ca.crt"}]
    [mount] = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "tls-ca"]
    assert (mount["mountPath"], mount["readOnly"]) == ("/etc/pulse/tls", True)


def test_the_doctor_test_can_be_turned_off() -> None:
    objects = render("--set", "tests.doctor.enabled=false")
    assert not [o for o in objects if o["metadata"]["name"] == "pulse-doctor"]
    assert find(objects, "Pod", "pulse-test")
