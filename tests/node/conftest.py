"""A real single-node Kubernetes for the chart (deploy/local/node.py): the control plane, containerd
and runc, the kubelet, kube-proxy and CoreDNS, with the images `make images` built here. One node
per machine: the session starts it, every test module installs its scenarios into it, and the
session stops it and checks that the machine is as it was (test_teardown.py)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest
import yaml
from kubernetes import client, config
from release import Node, NodeBusy, machine_state, operator_crd_dir, reclaim

from helpers import CLUSTER_PORT_OFFSET, eventually


@pytest.fixture(scope="session")
def machine_before() -> dict[str, object]:
    """What the machine looks like before the node starts, once what a node that was killed
    left is gone (it is the node's, removed by the next start too): test_teardown.py compares."""
    reclaim(progress=lambda line: print(line, file=sys.stderr))
    return machine_state()


@pytest.fixture(scope="session")
def node(
    tmp_path_factory: pytest.TempPathFactory, machine_before: dict[str, object]
) -> Iterator[Node]:
    local = Node(
        tmp_path_factory.mktemp("node"),
        # Like the stack's offset: the environment may move it, e.g. for a second checkout.
        env={
            **os.environ,
            "PULSE_CLUSTER_PORT_OFFSET": os.environ.get(
                "PULSE_CLUSTER_PORT_OFFSET", str(CLUSTER_PORT_OFFSET)
            ),
        },
    )
    try:
        local.up(progress=lambda line: print(line, file=sys.stderr))
    except NodeBusy as error:
        pytest.fail(f"the node tests need this machine's node: {error}", pytrace=False)
    try:
        yield local
    finally:
        local.down(progress=lambda line: print(line, file=sys.stderr))


@pytest.fixture(scope="session")
def api(node: Node) -> client.ApiClient:
    return config.new_client_from_config(str(node.kubeconfig))


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
