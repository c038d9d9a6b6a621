"""The rollout logic of `pulse doctor`, on the Kubernetes client's own model objects."""

from __future__ import annotations

from typing import Any

from kubernetes import client

from pulse.doctor.kube import rollout_check


def _deployment(replicas: int, generation: int, observed: int, updated: int, ready: int) -> Any:
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name="pulse", generation=generation),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels={"a": "b"}),
            template=client.V1PodTemplateSpec(),
        ),
        status=client.V1DeploymentStatus(
            observed_generation=observed, updated_replicas=updated, ready_replicas=ready
        ),
    )


def test_ready_deployment_passes() -> None:
    check = rollout_check("Deployment", _deployment(2, 3, 3, 2, 2), "pulse")
    assert check.ok
    assert check.detail == "2/2 ready"


def test_rollout_in_progress_names_what_is_missing_and_the_fix() -> None:
    check = rollout_check("Deployment", _deployment(2, 4, 3, 1, 1), "obs")
    assert not check.ok
    assert check.detail == (
        "the controller has not seen the latest spec; 1/2 replicas updated; 1/2 replicas ready"
    )
    assert (
        check.fix
        == "kubectl -n obs describe deployment/pulse; kubectl -n obs logs deployment/pulse"
    )


def test_unset_replicas_means_one() -> None:
    check = rollout_check("Deployment", _deployment(None, 1, 1, 0, 0), "pulse")  # type: ignore[arg-type]
    assert not check.ok
    assert "0/1 replicas ready" in check.detail
