"""A real Kubernetes API server for the chart: etcd, kube-apiserver, kube-controller-manager and
kube-scheduler built from their Go modules, with kwok's fake node (deploy/local/cluster.py).
Admission, validation, RBAC, controllers and rollout status are the real ones; the pods'
containers never run."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "deploy" / "local"))

from cluster import Cluster  # noqa: E402

# Ports of their own, so a developer's `make cluster-up` does not clash.
PORT_OFFSET = "300"


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    local = Cluster(
        tmp_path_factory.mktemp("cluster"), env={"PULSE_CLUSTER_PORT_OFFSET": PORT_OFFSET}
    )
    local.up(fresh=True, progress=lambda line: print(line, file=sys.stderr))
    yield local
    local.down()


@pytest.fixture(scope="session")
def api(cluster: Cluster) -> client.ApiClient:
    return config.new_client_from_config(str(cluster.kubeconfig))
