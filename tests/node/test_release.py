"""The chart's default-like scenario on the real node: everything bundled but Grafana (whose image
cannot be built here), with the load generator running. What only running containers show:
`helm test` and `pulse doctor` from outside green, read-only root filesystems, probes that pass
with the chart's timings, a graceful rollout restart, a collector replaced without losing the
export, each pod's peak memory against its limit, and an uninstall that leaves nothing."""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from release import (
    CHART,
    RELEASE,
    REPO,
    Node,
    assert_helm_test_passes,
    doctor,
    helm,
    install,
    memory_report,
)

from helpers import eventually

pytestmark = pytest.mark.e2e

NAMESPACE = "pulse-defaults"
# Paths every container gets from the runtime and the kubelet, besides the pod's volumes.
RUNTIME_MOUNTS = {"/dev", "/dev/shm", "/dev/mqueue", "/dev/termination-log", "/etc/hosts",
                  "/etc/hostname", "/etc/resolv.conf", "/proc", "/sys"}  # fmt: skip
# What the load generator may see while one Pulse replaces another: a retry, never a failure;
# and NOT_FOUND from GetSummary until the new replica has readings again (sensor windows are
# in memory, per replica). Streams still open when the grace ends are cut by grpc's own
# shutdown, whose GOAWAY carries INTERNAL_ERROR ("Cancelling all calls"): the client reports
# most of them UNAVAILABLE and, when a frame was in flight, INTERNAL; both are retried.
RESTART_CODES = {"UNAVAILABLE", "INTERNAL", "NOT_FOUND"}
REPORT = REPO / "build" / "node" / "peak-memory.txt"


@pytest.fixture(scope="module")
def release(node: Node) -> Iterator[str]:
    result = install(node, "defaults", NAMESPACE)
    assert result.returncode == 0, result.stderr
    assert "warning" not in result.stderr.lower(), result.stderr
    yield NAMESPACE
    helm(node, "uninstall", RELEASE, "-n", NAMESPACE, "--wait", "--ignore-not-found")


def _pods(api: client.ApiClient) -> list[client.V1Pod]:
    return client.CoreV1Api(api).list_namespaced_pod(NAMESPACE).items


def _running(api: client.ApiClient, component: str) -> client.V1Pod:
    pods = [
        p
        for p in _pods(api)
        if p.metadata.labels.get("app.kubernetes.io/component") == component
        and p.metadata.deletion_timestamp is None
        and all(s.ready for s in p.status.container_statuses or [client.V1ContainerStatus(
            name="", image="", image_id="", ready=False, restart_count=0)])
    ]  # fmt: skip
    assert len(pods) == 1, [p.metadata.name for p in pods]
    return pods[0]


def test_helm_test_passes(node: Node, release: str) -> None:
    assert_helm_test_passes(node, release)


def test_doctor_from_outside_is_green(node: Node, release: str) -> None:
    """The whole release through the API server: rollout, serving, export, and Pulse's traces
    and metrics found in Jaeger and Prometheus by the service proxy."""
    result = doctor(node.kubeconfig, "-n", release, "--release", RELEASE, "--wait", "240")
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert not [line for line in lines if line.startswith("[FAIL]")], result.stdout
    for expected in ("Deployment pulse rolled out", "Pulse is serving", "Jaeger", "Prometheus"):
        assert any(line.startswith("[ok  ]") and expected in line for line in lines), expected


def test_every_container_has_a_read_only_root_and_writes_only_to_its_volumes(
    node: Node, api: client.ApiClient, release: str
) -> None:
    tasks = _task_pids(node)
    checked = 0
    for pod in _pods(api):
        spec = {c.name: c for c in pod.spec.containers}
        for status in pod.status.container_statuses:
            pid = tasks[status.container_id.removeprefix("containerd://")]
            mounts = _mounts_of(pid)
            assert "ro" in mounts["/"], f"{pod.metadata.name}/{status.name}: / is {mounts['/']}"
            declared = {m.mount_path for m in spec[status.name].volume_mounts or []}
            writable = {path for path, options in mounts.items() if "rw" in options}
            unexpected = {
                p
                for p in writable - declared - RUNTIME_MOUNTS
                if not p.startswith(("/proc/", "/sys/", "/dev/"))
            }
            assert not unexpected, f"{pod.metadata.name}/{status.name} may write to {unexpected}"
            checked += 1
    assert checked >= 6, checked


def test_the_backends_write_their_data_to_their_volumes(
    node: Node, api: client.ApiClient, release: str
) -> None:
    """Prometheus' TSDB and the collector's file queue are on their emptyDirs, not in the image."""
    for component, volume, entry in (("prometheus", "data", "wal"), ("collector", "storage", None)):
        pod = _running(api, component)
        path = _volume_dir(node, pod, volume)
        entries = sorted(p.name for p in path.iterdir())
        assert entries, f"{component}: nothing in its {volume} volume at {path}"
        if entry:
            assert entry in entries, entries


def test_probes_pass_with_the_charts_timings(api: client.ApiClient, release: str) -> None:
    for pod in _pods(api):
        for status in pod.status.container_statuses:
            assert status.ready, f"{pod.metadata.name}/{status.name} not ready"
            assert status.restart_count == 0, f"{pod.metadata.name}/{status.name} restarted"
    events = client.CoreV1Api(api).list_namespaced_event(NAMESPACE).items
    failed = [
        f"{e.involved_object.name}: {e.message}"
        for e in events
        if e.reason == "Unhealthy" and "Liveness" in (e.message or "")
    ]
    assert not failed, failed


def test_every_pod_stays_inside_its_memory_limit(api: client.ApiClient, release: str) -> None:
    """Peak memory (the pod cgroup's high-water mark since it started, under the load generator)
    against the sum of its containers' limits; recorded in build/node/peak-memory.txt."""
    over = memory_report(_pods(api), REPORT)
    assert not over, over


def test_rollout_restart_of_pulse_drains_gracefully(api: client.ApiClient, release: str) -> None:
    apps = client.AppsV1Api(api)
    loadgen = _running(api, "loadgen").metadata.name
    before = _loadgen_errors(api, loadgen)
    restarted = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    annotations = {"kubectl.kubernetes.io/restartedAt": restarted}
    patch = {"spec": {"template": {"metadata": {"annotations": annotations}}}}
    apps.patch_namespaced_deployment("pulse", NAMESPACE, patch)
    eventually(lambda: _rolled_out(apps.read_namespaced_deployment("pulse", NAMESPACE)),
               "the restarted Pulse rolled out", timeout_s=300)  # fmt: skip
    # Two summary lines of the load generator after the old pod is gone.
    eventually(lambda: len(_pulse_pods(api)) == 1, "the old Pulse pod gone", timeout_s=120)
    time.sleep(12)
    after = _loadgen_errors(api, loadgen)
    new = {code: n - before.get(code, 0) for code, n in after.items() if n > before.get(code, 0)}
    assert set(new) <= RESTART_CODES, f"errors at the load generator during the restart: {new}"


def test_a_deleted_collector_is_replaced_and_the_export_goes_on(
    node: Node, api: client.ApiClient, release: str
) -> None:
    """The export resumes on the new pod: Pulse's SDK retries while no collector answers. What
    the old pod had queued is lost with its emptyDir (the chart's README says so)."""
    old = _running(api, "collector")
    client.CoreV1Api(api).delete_namespaced_pod(old.metadata.name, NAMESPACE)
    new = eventually(
        lambda: _replacement(api, old.metadata.name), "a new collector ready", timeout_s=180
    )
    assert new.metadata.name != old.metadata.name
    result = doctor(node.kubeconfig, "-n", NAMESPACE, "--release", RELEASE, "--wait", "240")
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_collector_on_a_claim_keeps_its_queue_when_its_pod_is_deleted(
    node: Node, api: client.ApiClient, release: str
) -> None:
    """collector.storageClaim: with Jaeger down, Pulse's spans wait in the collector's file
    queue; the pod is deleted, its replacement mounts the same claim and delivers them once
    Jaeger is back. Only the queue held spans from that window: the old pod was gone before
    Jaeger returned."""
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    claim = _claim(node, core)
    try:
        _upgrade(node, "collector.storageClaim", claim)
        _scale(apps, "pulse-jaeger", 0)
        eventually(lambda: not _of(api, "jaeger"), "Jaeger stopped", timeout_s=120)
        # Spans started in the window's first 10 s left Pulse's SDK (5 s batches) for the old
        # collector before it is deleted 20 s in: they reach Jaeger through its queue or never.
        down_from = time.time()
        down_to = down_from + 10
        time.sleep(20)
        old = _running(api, "collector")
        core.delete_namespaced_pod(old.metadata.name, NAMESPACE)
        eventually(lambda: _replacement(api, old.metadata.name), "a new collector", timeout_s=180)
        _scale(apps, "pulse-jaeger", 1)
        eventually(lambda: _of(api, "jaeger"), "Jaeger back", timeout_s=120)
        window = f"start={int(down_from * 1e6)}&end={int(down_to * 1e6)}"
        traces = eventually(
            lambda: _jaeger(node, f"/api/traces?service=pulse&{window}&limit=20")["data"],
            "Pulse's spans of the window Jaeger was down delivered from the queue",
            timeout_s=150,
            every_s=5,
        )
        assert traces
    finally:
        _upgrade(node, "collector.storageClaim", "")
        core.delete_namespaced_persistent_volume_claim(claim, NAMESPACE)
        core.delete_persistent_volume(f"{NAMESPACE}-{claim}")


def test_read_only_service_account_of_the_doctor(
    node: Node, api: client.ApiClient, release: str, tmp_path: Path
) -> None:
    """The helm test's Role lets the doctor read the release and nothing more."""
    kubeconfig, objects = _service_account_kubeconfig(node, api, tmp_path)
    result = doctor(kubeconfig, "-n", NAMESPACE, "--release", RELEASE)
    _delete(api, objects)
    assert "[ok  ] Deployment pulse rolled out and ready" in result.stdout, (
        result.stdout + result.stderr
    )
    assert "Forbidden" not in result.stdout
    restricted = _client_for(kubeconfig)
    for denied in (
        lambda: client.CoreV1Api(restricted).list_namespaced_secret(NAMESPACE),
        lambda: client.CoreV1Api(restricted).list_namespaced_service("kube-system"),
        lambda: client.AppsV1Api(restricted).delete_namespaced_deployment("pulse", NAMESPACE),
    ):
        with pytest.raises(ApiException) as error:
            denied()
        assert error.value.status == 403


def test_uninstall_leaves_nothing(node: Node, api: client.ApiClient, release: str) -> None:
    result = helm(node, "uninstall", RELEASE, "-n", NAMESPACE, "--wait")
    assert result.returncode == 0, result.stderr
    core = client.CoreV1Api(api)
    eventually(
        lambda: not core.list_namespaced_pod(NAMESPACE).items, "every pod gone", timeout_s=180
    )
    left = {
        kind: [o.metadata.name for o in items]
        for kind, items in (
            ("services", core.list_namespaced_service(NAMESPACE).items),
            (
                "configmaps",
                [
                    c
                    for c in core.list_namespaced_config_map(NAMESPACE).items
                    if c.metadata.name != "kube-root-ca.crt"
                ],
            ),
            ("secrets", core.list_namespaced_secret(NAMESPACE).items),
            (
                "serviceaccounts",
                [
                    s
                    for s in core.list_namespaced_service_account(NAMESPACE).items
                    if s.metadata.name != "default"
                ],
            ),
            ("deployments", client.AppsV1Api(api).list_namespaced_deployment(NAMESPACE).items),
            (
                "clusterroles",
                [
                    r
                    for r in client.RbacAuthorizationV1Api(api).list_cluster_role().items
                    if r.metadata.name.startswith(f"{NAMESPACE}-")
                ],
            ),
        )
        if items
    }
    assert not left, left


# --- helpers ---------------------------------------------------------------------------------


def _task_pids(node: Node) -> dict[str, int]:
    import subprocess

    out = subprocess.run([*node.ctr(), "tasks", "ls"], capture_output=True, text=True, check=True)
    rows = [line.split() for line in out.stdout.splitlines()[1:]]
    return {row[0]: int(row[1]) for row in rows if len(row) >= 3 and row[2] == "RUNNING"}


def _mounts_of(pid: int) -> dict[str, set[str]]:
    """Mount point -> its per-mount options, as the container's process sees them."""
    mounts = {}
    for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines():
        fields = line.split()
        mounts[fields[4]] = set(fields[5].split(","))
    return mounts


def _volume_dir(node: Node, pod: client.V1Pod, volume: str) -> Path:
    pods = node.dir / "kubelet" / "pods"
    return pods / pod.metadata.uid / "volumes" / "kubernetes.io~empty-dir" / volume


def _rolled_out(d: client.V1Deployment) -> bool:
    s = d.status
    return (
        s.observed_generation == d.metadata.generation
        and s.updated_replicas == d.spec.replicas
        and s.ready_replicas == d.spec.replicas
        and (s.replicas or 0) == d.spec.replicas
    )


def _pulse_pods(api: client.ApiClient) -> list[client.V1Pod]:
    return [
        p for p in _pods(api) if p.metadata.labels.get("app.kubernetes.io/component") == "server"
    ]


def _loadgen_errors(api: client.ApiClient, pod: str) -> Counter[str]:
    """The error counts of the load generator's last summary line."""
    log = client.CoreV1Api(api).read_namespaced_pod_log(pod, NAMESPACE, tail_lines=20)
    lines = [line for line in log.splitlines() if line.startswith("calls ")]
    assert lines, log
    shown = lines[-1].split("| errors ", 1)[1].split(" |", 1)[0]
    return Counter(
        {} if shown == "none" else {k: int(v) for k, v in (e.split("=") for e in shown.split())}
    )


def _claim(node: Node, core: client.CoreV1Api) -> str:
    """A PersistentVolumeClaim bound to a hostPath volume of the node, writable by the
    collector's user (fsGroup does not apply to hostPath)."""
    name = "collector-queue"
    path = node.dir / "volumes" / name
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, 10001, 10001)
    size = {"storage": "1Gi"}
    core.create_persistent_volume(
        {
            "metadata": {"name": f"{NAMESPACE}-{name}"},
            "spec": {
                "capacity": size,
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": "",
                "persistentVolumeReclaimPolicy": "Retain",
                "hostPath": {"path": str(path), "type": "Directory"},
                "claimRef": {"namespace": NAMESPACE, "name": name},
            },
        }
    )
    core.create_namespaced_persistent_volume_claim(
        NAMESPACE,
        {
            "metadata": {"name": name},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": "",
                "volumeName": f"{NAMESPACE}-{name}",
                "resources": {"requests": size},
            },
        },
    )
    return name


def _upgrade(node: Node, key: str, value: str) -> None:
    result = helm(
        node, "upgrade", RELEASE, str(CHART), "-n", NAMESPACE, "--reuse-values",
        "--set", f"{key}={value}", "--wait", "--timeout", "5m",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def _scale(apps: client.AppsV1Api, name: str, replicas: int) -> None:
    apps.patch_namespaced_deployment_scale(name, NAMESPACE, {"spec": {"replicas": replicas}})


def _of(api: client.ApiClient, component: str) -> list[client.V1Pod]:
    """The ready pods of a component."""
    return [
        p
        for p in _pods(api)
        if p.metadata.labels.get("app.kubernetes.io/component") == component
        and p.status.container_statuses
        and all(s.ready for s in p.status.container_statuses)
    ]


def _jaeger(node: Node, path: str) -> dict:
    """Jaeger's query API through the API server's service proxy."""
    proxy = f"/api/v1/namespaces/{NAMESPACE}/services/pulse-jaeger:query/proxy"
    try:
        return node.cluster.request("GET", proxy + path)
    except OSError:
        return {"data": []}


def _replacement(api: client.ApiClient, old: str) -> client.V1Pod | None:
    pods = [
        p for p in _pods(api) if p.metadata.labels.get("app.kubernetes.io/component") == "collector"
    ]
    fresh = [p for p in pods if p.metadata.name != old and p.status.container_statuses
             and all(s.ready for s in p.status.container_statuses)]  # fmt: skip
    return fresh[0] if fresh and all(p.metadata.name != old for p in pods) else None


def _service_account_kubeconfig(
    node: Node, api: client.ApiClient, tmp_path: Path
) -> tuple[Path, dict[str, dict]]:
    """The chart's `helm test` ServiceAccount, Role and RoleBinding (the test hooks without the
    pod) and a kubeconfig with a token for that ServiceAccount."""
    import yaml

    version = client.VersionApi(api).get_code().git_version
    out = helm(
        node, "template", RELEASE, str(CHART), "-n", NAMESPACE, "--kube-version", version,
        "--show-only", "templates/tests/doctor.yaml",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    objects = {doc["kind"]: doc for doc in yaml.safe_load_all(out.stdout) if doc}
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    core.create_namespaced_service_account(NAMESPACE, objects["ServiceAccount"])
    rbac.create_namespaced_role(NAMESPACE, objects["Role"])
    rbac.create_namespaced_role_binding(NAMESPACE, objects["RoleBinding"])
    name = objects["ServiceAccount"]["metadata"]["name"]
    token = core.create_namespaced_service_account_token(
        name, NAMESPACE, {"spec": {"expirationSeconds": 600}}
    ).status.token
    config = json.loads(node.kubeconfig.read_text())
    config["users"] = [{"name": name, "user": {"token": token}}]
    config["contexts"][0]["context"]["user"] = name
    path = tmp_path / "doctor.kubeconfig"
    path.write_text(json.dumps(config))
    return path, objects


def _delete(api: client.ApiClient, objects: dict[str, dict]) -> None:
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    name = objects["ServiceAccount"]["metadata"]["name"]
    rbac.delete_namespaced_role_binding(name, NAMESPACE)
    rbac.delete_namespaced_role(name, NAMESPACE)
    core.delete_namespaced_service_account(name, NAMESPACE)


def _client_for(kubeconfig: Path) -> client.ApiClient:
    from kubernetes import config

    return config.new_client_from_config(str(kubeconfig))
