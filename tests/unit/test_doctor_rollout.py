"""The rollout logic of `pulse doctor`, on the Kubernetes client's own model objects."""

from __future__ import annotations

from typing import Any

from kubernetes import client

from pulse.doctor.kube import rollout_check


def _deployment(
    replicas: int,
    generation: int,
    observed: int,
    updated: int,
    ready: int,
    total: int | None = None,
    conditions: list[client.V1DeploymentCondition] | None = None,
) -> Any:
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name="pulse", generation=generation),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels={"a": "b"}),
            template=client.V1PodTemplateSpec(),
        ),
        status=client.V1DeploymentStatus(
            observed_generation=observed,
            updated_replicas=updated,
            ready_replicas=ready,
            replicas=updated if total is None else total,
            conditions=conditions,
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


def test_old_replicas_left_mean_the_rollout_is_not_done() -> None:
    # A new revision no node takes: its pod is updated but pending, the old one still serves.
    check = rollout_check("Deployment", _deployment(1, 2, 2, 1, 1, total=2), "pulse")
    assert not check.ok
    assert check.detail == "1 old replicas still running"


def test_a_stalled_rollout_says_so() -> None:
    stalled = client.V1DeploymentCondition(
        type="Progressing", status="False", reason="ProgressDeadlineExceeded"
    )
    deployment = _deployment(1, 2, 2, 1, 1, total=2, conditions=[stalled])
    check = rollout_check("Deployment", deployment, "pulse")
    assert (
        check.detail == "the rollout exceeded its progress deadline; 1 old replicas still running"
    )
