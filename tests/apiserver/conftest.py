"""A real Kubernetes API server for the chart: etcd, kube-apiserver, kube-controller-manager and
kube-scheduler built from their Go modules, with kwok's fake node (deploy/local/cluster.py).
Admission, validation, RBAC, controllers and rollout status are the real ones; the pods'
containers never run."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest
import yaml
from kubernetes import client, config
from release import Cluster, operator_crd_dir

from helpers import CLUSTER_PORT_OFFSET, eventually


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    local = Cluster(
        tmp_path_factory.mktemp("cluster"),
        # Like the stack's offset: the environment may move it, e.g. for a second checkout.
        env={
            "PULSE_CLUSTER_PORT_OFFSET": os.environ.get(
                "PULSE_CLUSTER_PORT_OFFSET", str(CLUSTER_PORT_OFFSET)
            )
        },
    )
    local.up(fresh=True, progress=lambda line: print(line, file=sys.stderr))
    yield local
    local.down()


@pytest.fixture(scope="session")
def api(cluster: Cluster) -> client.ApiClient:
    return config.new_client_from_config(str(cluster.kubeconfig))


@pytest.fixture(scope="session")
def operator_crds(api: client.ApiClient) -> list[str]:
    """The Prometheus operator's PrometheusRule and ServiceMonitor CRDs (pinned in versions.env),
    established in the API server; their names."""
    extensions = client.ApiextensionsV1Api(api)
    names = []
    for path in sorted(operator_crd_dir().glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        extensions.create_custom_resource_definition(crd)
        names.append(crd["metadata"]["name"])
    for name in names:
        eventually(
            lambda n=name: _established(extensions.read_custom_resource_definition(n)),
            f"CRD {name} established",
            timeout_s=60,
            every_s=0.5,
        )
    return names


def _established(crd: client.V1CustomResourceDefinition) -> bool:
    return any(c.type == "Established" and c.status == "True" for c in crd.status.conditions or [])
