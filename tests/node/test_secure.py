"""The chart's `secure` scenario on the real node (authentication, mutual TLS, the HPA, the
NetworkPolicy): `helm test` and `pulse doctor` from outside green, and nothing left after the
uninstall. The node enforces no NetworkPolicy (its CNI bridge has no policy engine)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client
from release import RELEASE, Node, assert_helm_test_passes, doctor, helm, install

from helpers import eventually

pytestmark = pytest.mark.e2e

NAMESPACE = "pulse-secure"


@pytest.fixture(scope="module")
def release(node: Node) -> Iterator[str]:
    result = install(node, "secure", NAMESPACE)
    assert result.returncode == 0, result.stderr
    yield NAMESPACE
    helm(node, "uninstall", RELEASE, "-n", NAMESPACE, "--wait", "--ignore-not-found")


def test_helm_test_passes(node: Node, release: str) -> None:
    assert_helm_test_passes(node, release)


def test_doctor_from_outside_is_green(node: Node, release: str) -> None:
    result = doctor(node.kubeconfig, "-n", release, "--release", RELEASE, "--wait", "240")
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[FAIL]" not in result.stdout


def test_uninstall_leaves_no_pod(node: Node, api: client.ApiClient, release: str) -> None:
    result = helm(node, "uninstall", RELEASE, "-n", release, "--wait")
    assert result.returncode == 0, result.stderr
    core = client.CoreV1Api(api)
    eventually(lambda: not core.list_namespaced_pod(release).items, "every pod gone", timeout_s=180)
    assert not core.list_namespaced_service(release).items
