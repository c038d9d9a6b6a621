"""Helpers of the tests on the local node: helm with the node's values, `pulse doctor`, commands
in a pod, the operator CRDs, what the machine looks like (for the teardown check) and the pods'
cgroups and memory."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml
from kubernetes import client
from kubernetes.stream import stream

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "deploy" / "local"))

from node import CGROUP_ROOT, CGROUPS, NETNS, Node, NodeBusy, reclaim  # noqa: E402
from processes import Processes, tool  # noqa: E402

__all__ = [
    "CHART",
    "Node",
    "NodeBusy",
    "PodMemory",
    "Processes",
    "assert_helm_test_passes",
    "doctor",
    "exec_in",
    "helm",
    "hook_test_pods",
    "install",
    "machine_state",
    "memory_report",
    "reclaim",
]

CHART = REPO / "deploy/helm/pulse"
NODE_VALUES = CHART / "ci/node-values.yaml"
RELEASE = "pulse"
MACHINE_PATHS = ("/var/lib/kubelet", "/var/log/containers", "/var/lib/cni", "/run/containerd",
                 "/var/log/pods")  # fmt: skip
# What changes on its own between two readings of `sysctl -a`.
VOLATILE_SYSCTLS = re.compile(
    r"^(fs\.(dentry-state|file-nr|inode-nr|inode-state|aio-nr|quota\..*)|kernel\.(ns_last_pid|random\..*|pty\.nr)"
    r"|net\.netfilter\.nf_conntrack_count)$"
)


def operator_crd_dir() -> Path:
    out = subprocess.run(
        [str(REPO / "deploy/local/build.sh"), "crds"], check=True, stdout=subprocess.PIPE, text=True
    )
    return Path(out.stdout.strip().splitlines()[-1])


def helm(node: Node, *args: str, timeout_s: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("helm"), "--kubeconfig", str(node.kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )


def install(node: Node, scenario: str, namespace: str) -> subprocess.CompletedProcess[str]:
    """The scenario's values over the node's (images built here, Grafana off), waiting for every
    workload to be ready."""
    return helm(
        node, "install", RELEASE, str(CHART), "-n", namespace, "--create-namespace",
        "-f", str(NODE_VALUES), "-f", str(CHART / f"ci/{scenario}-values.yaml"),
        "--wait", "--timeout", "5m",
    )  # fmt: skip


def hook_test_pods(node: Node, namespace: str) -> set[str]:
    """The names of the release's `helm test` pods."""
    out = helm(node, "get", "hooks", RELEASE, "-n", namespace)
    assert out.returncode == 0, out.stderr
    return {
        doc["metadata"]["name"]
        for doc in yaml.safe_load_all(out.stdout)
        if doc and doc["kind"] == "Pod" and doc["metadata"]["annotations"]["helm.sh/hook"] == "test"
    }


def helm_test_phases(out: str) -> dict[str, str]:
    """Test suite -> phase, from the output of `helm test`."""
    suite = r"TEST SUITE:\s+(\S+)\nLast Started:.*?\nLast Completed:.*?\nPhase:\s+(\S+)"
    return dict(re.findall(suite, out))


def assert_helm_test_passes(node: Node, namespace: str) -> None:
    """`helm test` of the release in ``namespace``: every hook test pod ran, and succeeded."""
    result = helm(node, "test", RELEASE, "-n", namespace, "--timeout", "10m")
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    phases = helm_test_phases(result.stdout)
    assert phases, result.stdout
    assert set(phases) == hook_test_pods(node, namespace), result.stdout
    assert set(phases.values()) == {"Succeeded"}, result.stdout


def doctor(
    kubeconfig: Path, *args: str, timeout_s: float = 300
) -> subprocess.CompletedProcess[str]:
    """`pulse doctor` from outside, through the API server."""
    return subprocess.run(
        [sys.executable, "-m", "pulse", "doctor", "--kubeconfig", str(kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )


def exec_in(
    api: client.ApiClient, namespace: str, pod: str, *argv: str, timeout_s: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run a command in a pod's first container through the API server (pods/exec), as
    `kubectl exec` does, like `helm` here: its exit status and output. A command still running
    after the timeout fails the test."""
    call = stream(
        client.CoreV1Api(api).connect_get_namespaced_pod_exec,
        pod,
        namespace,
        command=list(argv),
        stdout=True,
        stderr=True,
        stdin=False,
        tty=False,
        _preload_content=False,
    )
    try:
        call.run_forever(timeout=timeout_s)
        out, err = call.read_stdout(timeout=0) or "", call.read_stderr(timeout=0) or ""
        assert not call.is_open(), f"{pod}: {argv} still running after {timeout_s}s: {out}{err}"
        return subprocess.CompletedProcess(list(argv), call.returncode, out, err)
    finally:
        call.close()


def _run(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=False).stdout


def machine_state() -> dict[str, object]:
    """What a node could leave behind on the machine: iptables rules, mounts, network namespaces,
    links and addresses, cgroups, sysctls."""
    iptables = {
        f"{save} {table}": sorted(
            re.sub(r"\[\d+:\d+\]", "", line)
            for line in _run(save, "-t", table).splitlines()
            if line.startswith((":", "-A"))
        )
        for save in ("iptables-save", "ip6tables-save", "iptables-legacy-save")
        for table in ("filter", "nat", "mangle", "raw")
    }
    sysctls = {}
    for line in _run("sysctl", "-a").splitlines():
        key, _, value = line.partition(" = ")
        if not VOLATILE_SYSCTLS.match(key):
            sysctls[key] = value
    return {
        "iptables": iptables,
        "mounts": sorted(
            line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
        ),
        "netns": sorted(p.name for p in NETNS.iterdir()) if NETNS.exists() else [],
        "links": sorted(re.findall(r"^\d+: ([^:@]+)", _run("ip", "-o", "link"), re.M)),
        "addresses": sorted(re.findall(r"inet6? (\S+)", _run("ip", "-o", "addr"))),
        "cgroups": sorted(str(p) for p in CGROUPS.glob(f"*/{CGROUP_ROOT}")),
        "sysctls": sysctls,
        # Every file under the machine-wide paths the kubelet, the shims and the CNI plugins use.
        "paths": sorted(
            str(path)
            for root in map(Path, MACHINE_PATHS)
            if root.exists()
            for path in (root, *root.rglob("*"))
        ),
    }


def pod_cgroup(uid: str) -> Path:
    """The memory cgroup of a pod (cgroup v1, the kubelet's cgroupfs layout under its root)."""
    matches = list((CGROUPS / "memory" / CGROUP_ROOT).glob(f"kubepods*/**/pod{uid}"))
    assert len(matches) == 1, f"pod {uid}: {matches}"
    return matches[0]


def peak_memory_bytes(uid: str) -> int:
    return int((pod_cgroup(uid) / "memory.max_usage_in_bytes").read_text())


@dataclass(frozen=True)
class PodMemory:
    """A pod's memory against the sum of its containers' limits (bytes)."""

    component: str
    peak: int  # the pod cgroup's high-water mark since it started
    working_set: int  # what the kubelet compares with the limit: usage less inactive files
    limit: int

    def row(self) -> str:
        mib = 2**20
        return (
            f"{self.component:14} peak {self.peak / mib:6.0f} MiB  working set "
            f"{self.working_set / mib:6.0f} MiB  limit {self.limit / mib:5.0f} MiB  "
            f"peak/limit {self.peak / self.limit:4.0%}"
        )


def memory_report(pods: list[client.V1Pod], report: Path) -> list[str]:
    """Each pod's memory written to ``report`` (and printed); what went over its limit: an
    OOMKilled container, a working set at the limit."""
    rows, over = [], []
    for pod in pods:
        memory = pod_memory(pod)
        rows.append(memory.row())
        for status in pod.status.container_statuses:
            terminated = status.last_state.terminated
            if terminated is not None and terminated.reason == "OOMKilled":
                over.append(f"{pod.metadata.name}/{status.name} OOMKilled")
        if memory.working_set >= memory.limit:
            over.append(f"{memory.component}: working set {memory.working_set} >= {memory.limit}")
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text("\n".join(sorted(rows)) + "\n")
    print("\n".join(sorted(rows)))
    return over


def pod_memory(pod: client.V1Pod) -> PodMemory:
    cgroup = pod_cgroup(pod.metadata.uid)
    stat = dict(line.split() for line in (cgroup / "memory.stat").read_text().splitlines())
    usage = int((cgroup / "memory.usage_in_bytes").read_text())
    return PodMemory(
        component=pod.metadata.labels.get("app.kubernetes.io/component", pod.metadata.name),
        peak=peak_memory_bytes(pod.metadata.uid),
        working_set=usage - int(stat["total_inactive_file"]),
        limit=sum(quantity_bytes(c.resources.limits["memory"]) for c in pod.spec.containers),
    )


def quantity_bytes(quantity: str) -> int:
    """A Kubernetes memory quantity (Ki, Mi, Gi or plain bytes) in bytes."""
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    for suffix, factor in units.items():
        if quantity.endswith(suffix):
            return int(float(quantity.removesuffix(suffix)) * factor)
    return int(quantity)
