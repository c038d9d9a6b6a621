"""`helm install` of the chart into a real API server, and `pulse doctor`'s Kubernetes checks
against what it installed: every scenario is accepted, scheduled and rolled out; the doctor reads
the release with the chart's own read-only Role and names a workload that cannot roll out.

The containers never run (kwok fakes the node and the pods' status), so the doctor's backend
checks cannot pass here; they are proven against the local stack in tests/e2e/test_doctor_live.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from release import CHART, Cluster, doctor, helm

from helpers import eventually

pytestmark = pytest.mark.e2e

RELEASE = "pulse"
# Every scenario of the chart's ci/ folder.
SCENARIOS = tuple(
    sorted(p.name.removesuffix("-values.yaml") for p in CHART.glob("ci/*-values.yaml"))
)
BACKENDS = ("--skip", "prometheus", "--skip", "jaeger", "--skip", "loki")


def _namespace(scenario: str) -> str:
    return f"pulse-{scenario}"


def _rendered(cluster: Cluster, scenario: str, *flags: str) -> list[dict[str, Any]]:
    out = helm(cluster, "get", "manifest", RELEASE, "-n", _namespace(scenario), *flags)
    assert out.returncode == 0, out.stderr
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


@pytest.fixture(scope="module")
def installed(cluster: Cluster, operator_crds: list[str]) -> dict[str, str]:
    """Each scenario installed into its own namespace with --wait; helm's output by scenario.
    The API server's warnings (unknown or dropped fields) fail the install."""
    results = {}
    for scenario in SCENARIOS:
        result = helm(
            cluster, "install", RELEASE, str(CHART), "-n", _namespace(scenario),
            "--create-namespace", "-f", str(CHART / f"ci/{scenario}-values.yaml"),
            "--wait", "--timeout", "3m",
        )  # fmt: skip
        assert result.returncode == 0, f"{scenario}: {result.stderr}"
        assert "warning" not in result.stderr.lower(), f"{scenario}: {result.stderr}"
        results[scenario] = result.stdout
    return results


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_rendered_workload_is_rolled_out(
    cluster: Cluster, api: client.ApiClient, installed: dict[str, str], scenario: str
) -> None:
    namespace = _namespace(scenario)
    expected = {
        o["metadata"]["name"] for o in _rendered(cluster, scenario) if o["kind"] == "Deployment"
    }
    deployments = client.AppsV1Api(api).list_namespaced_deployment(namespace).items
    assert {d.metadata.name for d in deployments} == expected
    for d in deployments:
        assert d.status.ready_replicas == d.spec.replicas, d.metadata.name
    pods = client.CoreV1Api(api).list_namespaced_pod(namespace).items
    assert pods
    assert {p.spec.node_name for p in pods} == {"kwok-node-0"}
    assert "helm test" in installed[scenario]  # NOTES.txt rendered by the real install


def test_operator_objects_are_accepted_by_their_crds(
    cluster: Cluster, api: client.ApiClient, installed: dict[str, str]
) -> None:
    namespace = _namespace("operator")
    custom = client.CustomObjectsApi(api)
    for plural, kind in (
        ("prometheusrules", "PrometheusRule"),
        ("servicemonitors", "ServiceMonitor"),
    ):
        rendered = {
            o["metadata"]["name"] for o in _rendered(cluster, "operator") if o["kind"] == kind
        }
        stored = custom.list_namespaced_custom_object(
            "monitoring.coreos.com", "v1", namespace, plural
        )
        assert rendered
        assert {o["metadata"]["name"] for o in stored["items"]} == rendered, kind
    rules = custom.list_namespaced_custom_object(
        "monitoring.coreos.com", "v1", namespace, "prometheusrules"
    )["items"]
    alerts = {
        r["alert"] for o in rules for g in o["spec"]["groups"] for r in g["rules"] if "alert" in r
    }
    assert "PulseAvailabilityBudgetBurn" in alerts
    assert "Watchdog" in alerts


def test_doctor_finds_every_workload_ready(cluster: Cluster, installed: dict[str, str]) -> None:
    namespace = _namespace("defaults")
    result = doctor(cluster.kubeconfig, "-n", namespace, "--release", RELEASE, *BACKENDS)
    deployments = [
        o["metadata"]["name"] for o in _rendered(cluster, "defaults") if o["kind"] == "Deployment"
    ]
    lines = result.stdout.splitlines()
    for name in deployments:
        assert f"[ok  ] Deployment {name} rolled out and ready: 1/1 ready" in lines, result.stdout
    # Nothing runs behind the fake pods: the API server's service proxy reaches no process.
    assert result.returncode == 1
    serving = [line for line in lines if "Pulse is serving" in line]
    assert serving, result.stdout
    assert serving[0].startswith("[FAIL]"), result.stdout
    assert f"service {namespace}/pulse:9464 (API server proxy)" in serving[0]


def test_doctor_with_the_charts_read_only_service_account(
    cluster: Cluster, api: client.ApiClient, installed: dict[str, str], tmp_path: Path
) -> None:
    namespace = _namespace("defaults")
    kubeconfig = _service_account_kubeconfig(cluster, api, namespace, tmp_path)
    result = doctor(kubeconfig, "-n", namespace, "--release", RELEASE, *BACKENDS)
    assert "[ok  ] Deployment pulse rolled out and ready: 1/1 ready" in result.stdout, (
        result.stdout + result.stderr
    )
    assert "Forbidden" not in result.stdout
    # Read-only, and only in its namespace.
    restricted = _client_for(kubeconfig)
    for denied in (
        lambda: client.CoreV1Api(restricted).list_namespaced_secret(namespace),
        lambda: client.CoreV1Api(restricted).list_namespaced_service(_namespace("secure")),
        lambda: client.AppsV1Api(restricted).delete_namespaced_deployment("pulse", namespace),
    ):
        with pytest.raises(ApiException) as error:
            denied()
        assert error.value.status == 403


def test_doctor_names_a_workload_that_cannot_roll_out(
    cluster: Cluster, api: client.ApiClient, installed: dict[str, str]
) -> None:
    namespace = _namespace("pulse-only")
    # A new revision no node can take: the rollout stalls with the old pod still serving.
    client.AppsV1Api(api).patch_namespaced_deployment(
        "pulse", namespace, {"spec": {"template": {"spec": {"nodeSelector": {"pool": "none"}}}}}
    )
    stalled = "[FAIL] Deployment pulse rolled out and ready: 1 old replicas still running"

    def diagnosed() -> str | None:
        result = doctor(cluster.kubeconfig, "-n", namespace, "--release", RELEASE, *BACKENDS)
        return result.stdout if stalled in result.stdout.splitlines() else None

    out = eventually(diagnosed, "the doctor seeing the stalled rollout", timeout_s=60, every_s=1)
    assert f"fix: kubectl -n {namespace} describe deployment/pulse" in out


def test_doctor_names_a_release_that_is_not_there(cluster: Cluster) -> None:
    result = doctor(cluster.kubeconfig, "-n", "pulse-defaults", "--release", "other", *BACKENDS)
    assert result.returncode == 1
    assert "[FAIL] Release other has workloads" in result.stdout
    assert "fix: helm -n pulse-defaults status other" in result.stdout


def test_uninstall_leaves_no_cluster_wide_object(
    cluster: Cluster, api: client.ApiClient, installed: dict[str, str]
) -> None:
    rbac = client.RbacAuthorizationV1Api(api)
    name = "pulse-external-backends-pulse-collector"
    assert rbac.read_cluster_role(name).metadata.name == name
    result = helm(cluster, "uninstall", RELEASE, "-n", _namespace("external-backends"), "--wait")
    assert result.returncode == 0, result.stderr
    for read in (rbac.read_cluster_role, rbac.read_cluster_role_binding):
        with pytest.raises(ApiException) as error:
            read(name)
        assert error.value.status == 404


# --- the doctor's ServiceAccount -----------------------------------------------------------------


def _service_account_kubeconfig(
    cluster: Cluster, api: client.ApiClient, namespace: str, tmp_path: Path
) -> Path:
    """Creates the chart's `helm test` ServiceAccount, Role and RoleBinding (the hooks, without
    the pod, whose container cannot run here) and returns a kubeconfig with a token for it."""
    version = client.VersionApi(api).get_code().git_version
    out = helm(
        cluster, "template", RELEASE, str(CHART), "-n", namespace, "--kube-version", version,
        "--show-only", "templates/tests/doctor.yaml",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    objects = {doc["kind"]: doc for doc in yaml.safe_load_all(out.stdout) if doc}
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    core.create_namespaced_service_account(namespace, objects["ServiceAccount"])
    rbac.create_namespaced_role(namespace, objects["Role"])
    rbac.create_namespaced_role_binding(namespace, objects["RoleBinding"])
    name = objects["ServiceAccount"]["metadata"]["name"]
    token = core.create_namespaced_service_account_token(
        name, namespace, {"spec": {"expirationSeconds": 600}}
    ).status.token
    config = json.loads(cluster.kubeconfig.read_text())
    config["users"] = [{"name": name, "user": {"token": token}}]
    config["contexts"][0]["context"]["user"] = name
    path = tmp_path / "doctor.kubeconfig"
    path.write_text(json.dumps(config))
    return path


def _client_for(kubeconfig: Path) -> client.ApiClient:
    from kubernetes import config

    return config.new_client_from_config(str(kubeconfig))
