"""The chart's scaled scenario on the real node: two Pulse replicas sharing the bundled PostgreSQL
and NATS JetStream StatefulSets, whose images are built here and whose claims bind to the node's
local volumes. Every pod ready, `helm test` green, the engines' data on their claims, the two
replicas sharing state (a reading recorded through one is served and deduplicated by the other;
an entry ingested through one reaches a Monitor on the other), each pod inside its memory limit,
and an uninstall that leaves only the claims, whose volumes are then released."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client
from node import STORAGE_CLASS
from release import (
    RELEASE,
    REPO,
    Node,
    assert_helm_test_passes,
    exec_in,
    helm,
    install,
    memory_report,
)

from helpers import eventually

pytestmark = pytest.mark.e2e

NAMESPACE = "pulse-scaled"
REPORT = REPO / "build" / "node" / "peak-memory-scaled.txt"
# component -> what its server writes to the root of its claim first
ENGINE_DATA = {"postgresql": "pgdata/PG_VERSION", "nats": "jetstream"}


@pytest.fixture(scope="module")
def release(node: Node, api: client.ApiClient) -> Iterator[str]:
    result = install(node, "scaled", NAMESPACE)
    try:
        assert result.returncode == 0, result.stderr
        assert "warning" not in result.stderr.lower(), result.stderr
        yield NAMESPACE
    finally:  # a failed install too: the modules after this one get the node to themselves
        helm(node, "uninstall", RELEASE, "-n", NAMESPACE, "--wait", "--ignore-not-found")
        _delete_claims(client.CoreV1Api(api))


def _pods(api: client.ApiClient, component: str | None = None) -> list[client.V1Pod]:
    pods = client.CoreV1Api(api).list_namespaced_pod(NAMESPACE).items
    return [
        p
        for p in pods
        if component is None or p.metadata.labels.get("app.kubernetes.io/component") == component
    ]


def _replicas(api: client.ApiClient) -> tuple[str, str]:
    names = sorted(p.metadata.name for p in _pods(api, "server"))
    assert len(names) == 2, names
    return names[0], names[1]


def test_every_pod_is_ready_on_the_nodes_images(api: client.ApiClient, release: str) -> None:
    pods = _pods(api)
    components = {p.metadata.labels.get("app.kubernetes.io/component") for p in pods}
    assert {"server", "postgresql", "nats"} <= components, components
    assert len(_pods(api, "server")) == 2
    for pod in pods:
        for status in pod.status.container_statuses:
            assert status.ready, f"{pod.metadata.name}/{status.name} not ready"
    for component, image in (("postgresql", "local/postgresql:"), ("nats", "local/nats:")):
        (engine,) = _pods(api, component)
        (status,) = engine.status.container_statuses
        assert status.image.removeprefix("docker.io/").startswith(image), status.image
        assert status.restart_count == 0, f"{component} restarted"


def test_the_engines_write_to_claims_bound_to_the_nodes_local_volumes(
    node: Node, api: client.ApiClient, release: str
) -> None:
    core = client.CoreV1Api(api)
    claims = core.list_namespaced_persistent_volume_claim(NAMESPACE).items
    by_component = {c.metadata.labels["app.kubernetes.io/component"]: c for c in claims}
    assert set(by_component) == set(ENGINE_DATA), [c.metadata.name for c in claims]
    for component, first_file in ENGINE_DATA.items():
        claim = by_component[component]
        assert claim.status.phase == "Bound", claim.metadata.name
        assert claim.spec.storage_class_name == STORAGE_CLASS, "the node's default StorageClass"
        volume = core.read_persistent_volume(claim.spec.volume_name)
        path = Path(volume.spec.local.path)
        assert path.parent == node.dir / "volumes", path
        assert (path / first_file).exists(), f"{component}: no {first_file} in {path}"


def test_helm_test_passes(node: Node, release: str) -> None:
    assert_helm_test_passes(node, release)


def test_a_reading_recorded_on_one_replica_is_served_and_deduplicated_by_the_other(
    api: client.ApiClient, release: str
) -> None:
    """Each replica is reached on its own loopback (pods/exec), not through the Service."""
    first, second = _replicas(api)
    sensor, reading = f"node-scaled-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    record = ("sensors", "record", "--sensor", sensor, "--temperature", "21.5", "--id", reading)
    assert _counts(_pulse(api, first, *record)) == {"accepted": 1, "duplicates": 0}

    summary = eventually(
        lambda: _summary(api, second, sensor), f"{sensor} served by {second}", timeout_s=30
    )
    assert int(summary["readings_total"]) == 1
    assert summary["avg_temperature"] == 21.5

    assert _counts(_pulse(api, second, *record)) == {"accepted": 0, "duplicates": 1}
    assert int(_summary(api, first, sensor)["readings_total"]) == 1


def test_an_entry_ingested_on_one_replica_reaches_a_monitor_on_the_other(
    api: client.ApiClient, release: str
) -> None:
    first, second = _replicas(api)
    source, message = f"node-scaled-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    send = f"echo {message} | pulse send-logs --source {source}"
    assert int(json.loads(_ok(exec_in(api, NAMESPACE, first, "sh", "-c", send)))["accepted"]) == 1
    # An entry stored before the Monitor started comes with its backlog; the CLI stops after it.
    monitor = ("logs", "--source", source, "--backlog", "10", "--count", "1", "--json")
    (line,) = _pulse(api, second, *monitor, within_s=30).splitlines()
    assert json.loads(line)["message"] == message


def test_every_pod_stays_inside_its_memory_limit(api: client.ApiClient, release: str) -> None:
    """Recorded in build/node/peak-memory-scaled.txt, the engines' rows among them. The test
    pods of `helm test` are gone or going (their cgroups with them)."""
    running = [p for p in _pods(api) if p.status.phase == "Running"]
    over = memory_report([p for p in running if p.metadata.deletion_timestamp is None], REPORT)
    assert not over, over


def test_uninstall_leaves_the_claims_alone_and_then_nothing(
    node: Node, api: client.ApiClient, release: str
) -> None:
    """A StatefulSet's claims outlive its release (Kubernetes keeps them, and their data);
    deleted by hand, their local volumes are released and keep the data until the node stops."""
    result = helm(node, "uninstall", RELEASE, "-n", NAMESPACE, "--wait")
    assert result.returncode == 0, result.stderr
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    eventually(lambda: not _pods(api), "every pod gone", timeout_s=180)
    claims = core.list_namespaced_persistent_volume_claim(NAMESPACE).items
    assert {c.metadata.labels["app.kubernetes.io/component"] for c in claims} == set(ENGINE_DATA)
    volumes = [c.spec.volume_name for c in claims]
    _delete_claims(core)
    for volume in volumes:
        eventually(
            lambda v=volume: core.read_persistent_volume(v).status.phase == "Released",
            f"volume {volume} released",
            timeout_s=60,
        )
    left = {
        kind: names
        for kind, names in (
            ("services", [s.metadata.name for s in core.list_namespaced_service(NAMESPACE).items]),
            ("secrets", [s.metadata.name for s in core.list_namespaced_secret(NAMESPACE).items]),
            (
                "configmaps",
                [
                    c.metadata.name
                    for c in core.list_namespaced_config_map(NAMESPACE).items
                    if c.metadata.name != "kube-root-ca.crt"
                ],
            ),
            (
                "statefulsets",
                [s.metadata.name for s in apps.list_namespaced_stateful_set(NAMESPACE).items],
            ),
            (
                "deployments",
                [d.metadata.name for d in apps.list_namespaced_deployment(NAMESPACE).items],
            ),
            (
                "claims",
                [
                    c.metadata.name
                    for c in core.list_namespaced_persistent_volume_claim(NAMESPACE).items
                ],
            ),
        )
        if names
    }
    assert not left, left


# --- helpers ---------------------------------------------------------------------------------


def _pulse(api: client.ApiClient, pod: str, *args: str, within_s: int | None = None) -> str:
    """The `pulse` CLI in a Pulse pod, against that pod's own server (localhost:50051); its
    output. ``within_s``: it is stopped after that many seconds (a stream that never ends)."""
    command = ("pulse", *args) if within_s is None else ("timeout", str(within_s), "pulse", *args)
    return _ok(exec_in(api, NAMESPACE, pod, *command))


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"{result.args} exited {result.returncode}: {result.stderr}"
    return result.stdout


def _summary(api: client.ApiClient, pod: str, sensor: str) -> dict | None:
    """The sensor's summary on that replica; None while it answers NOT_FOUND."""
    result = exec_in(api, NAMESPACE, pod, "pulse", "sensors", "get", "--sensor", sensor)
    if result.returncode != 0 and "NOT_FOUND" in result.stderr:
        return None
    return json.loads(_ok(result))


def _counts(out: str) -> dict[str, int]:
    reply = json.loads(out)
    return {key: int(reply[key]) for key in ("accepted", "duplicates")}


def _delete_claims(core: client.CoreV1Api) -> None:
    for claim in core.list_namespaced_persistent_volume_claim(NAMESPACE).items:
        core.delete_namespaced_persistent_volume_claim(claim.metadata.name, NAMESPACE)
