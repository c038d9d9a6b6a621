"""`helm install` of the chart's smaller scenarios onto the real node, and `pulse doctor`'s
Kubernetes checks against what they installed: each is accepted, scheduled, started and rolled
out; the doctor names a workload that cannot roll out and a release that is not there; the
uninstall leaves no cluster-wide object. The full scenarios (defaults, secure, scaled) are
test_release.py's, test_secure.py's and test_scaled_scenario.py's."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from node import NAME
from release import CHART, NODE_VALUES, RELEASE, Node, doctor, helm, install

from helpers import eventually

pytestmark = pytest.mark.e2e

# Every scenario of ci/ but the node's own values, those test_release.py (defaults),
# test_secure.py and test_scaled_scenario.py run in full, victorialogs: the node's values
# already make defaults run VictoriaLogs, which is all that scenario changes, and
# scaled-external: its engines run outside the cluster (tests/integration/test_scaled.py runs
# them as processes).
SCENARIOS = tuple(
    sorted(
        p.name.removesuffix("-values.yaml")
        for p in CHART.glob("ci/*-values.yaml")
        if p.name.removesuffix("-values.yaml")
        not in {"node", "defaults", "secure", "victorialogs", "scaled", "scaled-external"}
    )
)
BACKENDS = ("--skip", "prometheus", "--skip", "jaeger", "--skip", "loki", "--skip", "victorialogs")


def _namespace(scenario: str) -> str:
    return f"pulse-{scenario}"


def _rendered(node: Node, scenario: str, *flags: str) -> list[dict[str, Any]]:
    out = helm(node, "get", "manifest", RELEASE, "-n", _namespace(scenario), *flags)
    assert out.returncode == 0, out.stderr
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


@pytest.fixture(scope="module")
def installed(node: Node, operator_crds: list[str]) -> Iterator[dict[str, str]]:
    """Each scenario installed into its own namespace with --wait; helm's output by scenario.
    The API server's warnings (unknown or dropped fields) fail the install."""
    results = {}
    for scenario in SCENARIOS:
        result = install(node, scenario, _namespace(scenario))
        assert result.returncode == 0, f"{scenario}: {result.stderr}"
        assert "warning" not in result.stderr.lower(), f"{scenario}: {result.stderr}"
        results[scenario] = result.stdout
    yield results
    for scenario in SCENARIOS:
        helm(node, "uninstall", RELEASE, "-n", _namespace(scenario), "--wait", "--ignore-not-found")


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_rendered_workload_is_rolled_out(
    node: Node, api: client.ApiClient, installed: dict[str, str], scenario: str
) -> None:
    namespace = _namespace(scenario)
    expected = {
        o["metadata"]["name"] for o in _rendered(node, scenario) if o["kind"] == "Deployment"
    }
    deployments = client.AppsV1Api(api).list_namespaced_deployment(namespace).items
    assert {d.metadata.name for d in deployments} == expected
    for d in deployments:
        assert d.status.ready_replicas == d.spec.replicas, d.metadata.name
    pods = client.CoreV1Api(api).list_namespaced_pod(namespace).items
    assert pods
    for pod in pods:
        assert pod.spec.node_name == NAME, pod.metadata.name
        assert pod.status.phase == "Running", pod.metadata.name
        # Real containers: the runtime gave each one an ID and started it.
        for status in pod.status.container_statuses:
            assert status.container_id.startswith("containerd://"), status
            assert status.state.running is not None, status
    assert "helm test" in installed[scenario]  # NOTES.txt rendered by the real install


def test_operator_objects_are_accepted_by_their_crds(
    node: Node, api: client.ApiClient, installed: dict[str, str]
) -> None:
    namespace = _namespace("operator")
    custom = client.CustomObjectsApi(api)
    for plural, kind in (
        ("prometheusrules", "PrometheusRule"),
        ("servicemonitors", "ServiceMonitor"),
    ):
        rendered = {o["metadata"]["name"] for o in _rendered(node, "operator") if o["kind"] == kind}
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


def test_doctor_names_a_workload_that_cannot_roll_out(
    node: Node, api: client.ApiClient, installed: dict[str, str]
) -> None:
    namespace = _namespace("pulse-only")
    # A new revision no node can take: the rollout stalls with the old pod still serving.
    client.AppsV1Api(api).patch_namespaced_deployment(
        "pulse", namespace, {"spec": {"template": {"spec": {"nodeSelector": {"pool": "none"}}}}}
    )
    stalled = "[FAIL] Deployment pulse rolled out and ready: 1 old replicas still running"

    def diagnosed() -> str | None:
        result = doctor(node.kubeconfig, "-n", namespace, "--release", RELEASE, *BACKENDS)
        return result.stdout if stalled in result.stdout.splitlines() else None

    out = eventually(diagnosed, "the doctor seeing the stalled rollout", timeout_s=60, every_s=1)
    assert f"fix: kubectl -n {namespace} describe deployment/pulse" in out


def test_doctor_names_a_release_that_is_not_there(node: Node) -> None:
    result = doctor(node.kubeconfig, "-n", "pulse-pulse-only", "--release", "other", *BACKENDS)
    assert result.returncode == 1
    assert "[FAIL] Release other has workloads" in result.stdout
    assert "fix: helm -n pulse-pulse-only status other" in result.stdout


def test_uninstall_leaves_no_cluster_wide_object(node: Node, api: client.ApiClient) -> None:
    """With k8s_attributes on, the collector's ClusterRole and binding are the chart's only
    cluster-wide objects. The collector built here lacks that processor (node-values.yaml), so
    this release is checked by the API server alone, without waiting for its pods."""
    namespace = "pulse-rbac"
    result = helm(
        node, "install", RELEASE, str(CHART), "-n", namespace, "--create-namespace",
        "-f", str(NODE_VALUES), "-f", str(CHART / "ci/external-backends-values.yaml"),
        "--set", "collector.k8sAttributes=true",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rbac = client.RbacAuthorizationV1Api(api)
    name = f"{namespace}-pulse-collector"
    assert rbac.read_cluster_role(name).metadata.name == name
    assert rbac.read_cluster_role_binding(name).metadata.name == name
    result = helm(node, "uninstall", RELEASE, "-n", namespace, "--wait")
    assert result.returncode == 0, result.stderr
    for read in (rbac.read_cluster_role, rbac.read_cluster_role_binding):
        with pytest.raises(ApiException) as error:
            read(name)
        assert error.value.status == 404
