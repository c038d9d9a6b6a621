#!/usr/bin/env python3
"""A real single-node Kubernetes on this machine, without Docker or a registry: the control plane
of cluster.py, containerd and runc (Debian's packages) with the CNI bridge plugin, the kubelet,
kube-proxy in iptables mode and CoreDNS on the host, all started and stopped by pid through
processes.py. Images come from images.sh, imported into the node's containerd.

    node.py up | down | status | kubeconfig | socket | running

Only one node runs per machine (it owns machine-wide state: iptables chains, sysctls, cgroups,
the CNI bridge); a lock file refuses a second one and names the checkout that holds it. The state
lives in PULSE_NODE_DIR, default .node/ in the repository, with the admin kubeconfig at
.node/kubeconfig. `down` undoes everything `up` did to the machine.

Addresses are from 198.18.0.0/15, the range set aside for network tests (RFC 2544), so nothing
here can reach or shadow a real network: pods 198.18.0.0/24 on the bridge pulse-cni0, Services
198.18.128.0/24, the node itself 198.19.0.1 on the port-less bridge pulse-node0 (this kernel has
no dummy links, and the node address cannot be loopback). Pods get routes to the node and the
Services only: no default route, and nothing outside the cluster resolves.

Claims bind to local volumes of the node: directories under the state dir, offered by the default
StorageClass pulse-node-local. They are made at `up`, kept once released (their data stays), and
removed by `down`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cluster import Cluster
from processes import Processes, StartupError, alive, tool

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

NAME = "pulse-node"
NODE_IP = "198.19.0.1"
NODE_BRIDGE = "pulse-node0"
POD_CIDR = "198.18.0.0/24"
POD_BRIDGE = "pulse-cni0"
SERVICE_CIDR = "198.18.128.0/24"
CNI_NETWORK = "pulse"
CNI_BIN = Path("/usr/lib/cni")
# The node's ports besides the control plane's (moved by PULSE_CLUSTER_PORT_OFFSET too).
PORTS = {"kubelet": 10250, "kubelet-healthz": 10248, "proxy-healthz": 10256,
         "proxy-metrics": 10249, "coredns-health": 10254, "coredns-ready": 10253}  # fmt: skip
ORDER = ("containerd", "kubelet", "kube-proxy", "coredns")
# Sysctls the kubelet (vm.overcommit_memory, kernel.panic*), the bridge plugin (ip_forward) and
# Service traffic between pods on one bridge (bridge-nf-call-iptables) change: restored on down.
SYSCTLS = ("net.ipv4.ip_forward", "net.bridge.bridge-nf-call-iptables", "vm.overcommit_memory",
           "kernel.panic", "kernel.panic_on_oops", "net.ipv4.conf.all.route_localnet",
           "net.netfilter.nf_conntrack_max")  # fmt: skip
# Machine-wide paths the kubelet, containerd's shims and the CNI plugins use whatever the config.
CONTAINER_LOGS = Path("/var/log/containers")
# The device manager's socket and checkpoint: a fixed path in the kubelet, not under --root-dir.
DEVICE_PLUGINS = Path("/var/lib/kubelet/device-plugins")
SHIM_SOCKETS = Path("/run/containerd")
CNI_STATE = Path("/var/lib/cni")
NETNS = Path("/run/netns")
CGROUP_ROOT = "pulse-node"
CGROUPS = Path("/sys/fs/cgroup")
LOCK = Path(os.environ.get("PULSE_NODE_LOCK", "/run/pulse-node.lock"))
READY_TIMEOUT_S = 180.0
# The default StorageClass and its local volumes: enough for the claims of two releases of the
# chart's scaled scenario (PostgreSQL's and NATS'). Their capacity is declared, not enforced: each
# is a directory with the free space of the node's disk.
STORAGE_CLASS = "pulse-node-local"
VOLUMES = 4
VOLUME_CAPACITY = "10Gi"


class NodeBusy(RuntimeError):
    """Another node runs on this machine."""


def sh(*argv: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], check=check, capture_output=True, text=True)


class Node:
    def __init__(self, state_dir: Path | None = None, env: dict[str, str] | None = None) -> None:
        self.env = dict(os.environ if env is None else env)
        default = self.env.get("PULSE_NODE_DIR") or REPO / ".node"
        self.dir = Path(state_dir or default).resolve()
        offset = int(self.env.get("PULSE_CLUSTER_PORT_OFFSET", "0"))
        self.ports = {k: v + offset for k, v in PORTS.items()}
        self.cluster = Cluster(
            self.dir,
            self.env,
            host=NODE_IP,
            service_cidr=SERVICE_CIDR,
            identities={
                "kubelet": (f"system:node:{NAME}", "system:nodes"),
                "kube-proxy": ("system:kube-proxy", "system:authenticated"),
                "coredns": ("system:coredns", "system:authenticated"),
            },
            apiserver_flags=(
                f"--kubelet-client-certificate={self.dir / 'pki' / 'kubelet-client.crt'}",
                f"--kubelet-client-key={self.dir / 'pki' / 'kubelet-client.key'}",
                "--kubelet-preferred-address-types=InternalIP",
            ),
        )
        self.kubeconfig = self.cluster.kubeconfig
        self.processes = Processes(self.dir, "PULSE_CLUSTER_PORT_OFFSET")
        self.socket = self.dir / "containerd" / "containerd.sock"

    # The machine-wide lock ------------------------------------------------------------------

    def owner(self) -> dict | None:
        """The running node of this machine: its state dir and containerd pid, or None."""
        owner = _lock_record()
        if not owner or not _alive(owner):
            return None
        return owner

    def _claim(self) -> None:
        owner = self.owner()
        if owner and owner["dir"] != str(self.dir):
            raise NodeBusy(
                f"a node already runs on this machine, from {owner['dir']} (pid {owner['pid']}); "
                f"only one can: stop it there with `make node-down`"
            )
        LOCK.write_text(json.dumps({"dir": str(self.dir), "pid": os.getpid()}))

    # Up -------------------------------------------------------------------------------------

    def up(self, progress: Callable[[str], None] = print) -> float:
        """Start the whole node; return the seconds it took. A failed start is undone."""
        with _locked():
            _reclaim(progress, self.env)
            self._claim()
            started = time.monotonic()
            try:
                self._check_packages()
                self._record_sysctls()
                self._network()
                self._credentials()
                self.cluster.up(progress)
                self._rbac()
                for name in ORDER:
                    progress(f"starting {name}…")
                    self._start(name)
                    self.processes.wait(name, lambda n=name: self.healthy(n), READY_TIMEOUT_S)
                    progress(f"  {name} ready ({time.monotonic() - started:.1f}s)")
                LOCK.write_text(
                    json.dumps({"dir": str(self.dir), "pid": self.processes.pid("containerd")})
                )
                progress("importing images…")
                subprocess.run([str(HERE / "images.sh"), "import", str(self.socket)], check=True)
                self.processes.wait(f"node {NAME}", self.ready, READY_TIMEOUT_S, process="kubelet")
                progress(f"  node {NAME} Ready ({time.monotonic() - started:.1f}s)")
                self._storage()
                progress(f"  {VOLUMES} local volumes of StorageClass {STORAGE_CLASS}")
            except BaseException:  # any failure, an interrupt too: nothing is left running
                self._teardown(progress)
                raise
            return time.monotonic() - started

    def _check_packages(self) -> None:
        missing = [
            p for p in ("containerd", "runc", "iptables", "conntrack") if not shutil.which(p)
        ]
        if not (CNI_BIN / "bridge").exists():
            missing.append(f"the CNI plugins in {CNI_BIN}")
        if missing:
            raise StartupError(
                "node", f"needs {', '.join(missing)}: Debian's packages, `make node-packages`"
            )

    def _record_sysctls(self) -> None:
        path = self.dir / "sysctls.json"
        if not path.exists():
            self.dir.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({k: _sysctl(k) for k in SYSCTLS}))

    def _network(self) -> None:
        if sh("ip", "link", "show", NODE_BRIDGE, check=False).returncode != 0:
            sh("ip", "link", "add", NODE_BRIDGE, "type", "bridge")
            sh("ip", "addr", "add", f"{NODE_IP}/32", "dev", NODE_BRIDGE)
            sh("ip", "link", "set", NODE_BRIDGE, "up")
        # Services between pods on one bridge pass through iptables (kube-proxy's DNAT).
        _set_sysctl("net.bridge.bridge-nf-call-iptables", "1")
        for controller in _cgroup_controllers():
            (CGROUPS / controller / CGROUP_ROOT).mkdir(exist_ok=True)
        cni = self.dir / "cni"
        cni.mkdir(parents=True, exist_ok=True)
        (cni / "10-pulse.conflist").write_text(json.dumps(_cni_config(self.dir), indent=2))

    def _credentials(self) -> None:
        """The client certificate the API server shows the kubelet (logs, exec, port-forward),
        signed by a CA only the kubelet trusts."""
        pki = self.dir / "pki"
        if (pki / "kubelet-client.crt").exists():
            return
        pki.mkdir(parents=True, exist_ok=True)
        ca, client = pki / "kubelet-ca", pki / "kubelet-client"
        key = ("-newkey", "rsa:2048", "-nodes")
        sh("openssl", "req", "-x509", *key, "-days", "30", "-subj", "/CN=pulse-node-kubelet-ca",
           "-keyout", f"{ca}.key", "-out", f"{ca}.crt")  # fmt: skip
        sh("openssl", "req", *key, "-subj", "/O=system:masters/CN=kube-apiserver-kubelet-client",
           "-keyout", f"{client}.key", "-out", f"{client}.csr")  # fmt: skip
        sh("openssl", "x509", "-req", "-in", f"{client}.csr", "-CA", f"{ca}.crt", "-days", "30",
           "-CAkey", f"{ca}.key", "-CAcreateserial", "-out", f"{client}.crt")  # fmt: skip

    def _rbac(self) -> None:
        """CoreDNS reads Services, EndpointSlices and Namespaces cluster-wide."""
        role = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "pulse-node:coredns"},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["services", "namespaces", "pods"],
                    "verbs": ["list", "watch"],
                },
                {
                    "apiGroups": ["discovery.k8s.io"],
                    "resources": ["endpointslices"],
                    "verbs": ["list", "watch"],
                },
            ],
        }
        binding = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "pulse-node:coredns"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": "pulse-node:coredns"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                          "name": "system:coredns"}],
        }  # fmt: skip
        self._create("/apis/rbac.authorization.k8s.io/v1/clusterroles", role)
        self._create("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", binding)

    def _storage(self) -> None:
        """The default StorageClass and its local volumes, so that claims bind on the node. The
        kubelet gives a local volume the pod's fsGroup, as it does an emptyDir."""
        self._create("/apis/storage.k8s.io/v1/storageclasses", _storage_class())
        for index in range(VOLUMES):
            path = self.dir / "volumes" / str(index)
            path.mkdir(parents=True, exist_ok=True)
            self._create("/api/v1/persistentvolumes", _local_volume(f"{NAME}-{index}", path))

    def _create(self, path: str, body: dict) -> None:
        """POST an object; one that exists already (a second `up` of a running node) stays."""
        try:
            self.cluster.request("POST", path, body)
        except urllib.error.HTTPError as error:
            if error.code != 409:
                raise

    def _start(self, name: str) -> None:
        argv, ports = {
            "containerd": self._containerd,
            "kubelet": self._kubelet,
            "kube-proxy": self._kube_proxy,
            "coredns": self._coredns,
        }[name]()
        self.processes.start(name, argv, ports=ports)

    def _containerd(self) -> tuple[list[str], dict[str, int]]:
        version = sh("containerd", "--version").stdout.split()[2].lstrip("v")
        series = _versions()["CONTAINERD_SERIES"]
        if not version.startswith(series + "."):
            raise StartupError("containerd", f"is {version}; the node's config is for {series}.x")
        config = self.dir / "containerd" / "config.toml"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(_containerd_config(self.dir, self.socket))
        return ["containerd", f"--config={config}"], {}

    def _kubelet(self) -> tuple[list[str], dict[str, int]]:
        config = self.dir / "kubelet" / "config.json"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(json.dumps(_kubelet_config(self), indent=2))
        argv = [
            tool("kubelet"),
            f"--config={config}",
            f"--kubeconfig={self.cluster.kubeconfig_of('kubelet')}",
            f"--root-dir={self.dir / 'kubelet'}",
            f"--cert-dir={self.dir / 'kubelet' / 'pki'}",
            f"--node-ip={NODE_IP}",
            f"--hostname-override={NAME}",
        ]
        ports = {k: self.ports[k] for k in ("kubelet-healthz",)}
        return argv, ports

    def _kube_proxy(self) -> tuple[list[str], dict[str, int]]:
        argv = [
            tool("kube-proxy"),
            f"--kubeconfig={self.cluster.kubeconfig_of('kube-proxy')}",
            f"--hostname-override={NAME}",
            "--proxy-mode=iptables",
            f"--cluster-cidr={POD_CIDR}",
            f"--healthz-bind-address=127.0.0.1:{self.ports['proxy-healthz']}",
            f"--metrics-bind-address=127.0.0.1:{self.ports['proxy-metrics']}",
            # Leave the machine's conntrack table and route_localnet as they are.
            "--conntrack-max-per-core=0",
            "--conntrack-tcp-timeout-established=0",
            "--conntrack-tcp-timeout-close-wait=0",
            "--iptables-localhost-nodeports=false",
            f"--nodeport-addresses={NODE_IP}/32",
        ]
        return argv, {k: self.ports[k] for k in ("proxy-healthz", "proxy-metrics")}

    def _coredns(self) -> tuple[list[str], dict[str, int]]:
        corefile = self.dir / "coredns" / "Corefile"
        corefile.parent.mkdir(parents=True, exist_ok=True)
        corefile.write_text(
            f""".:53 {{
    bind {NODE_IP}
    errors
    health 127.0.0.1:{self.ports["coredns-health"]}
    ready 127.0.0.1:{self.ports["coredns-ready"]}
    kubernetes cluster.local in-addr.arpa ip6.arpa {{
        kubeconfig {self.cluster.kubeconfig_of("coredns")} pulse-local
        pods insecure
    }}
    cache 30
}}
"""
        )
        ports = {k: self.ports[k] for k in ("coredns-health", "coredns-ready")}
        return [tool("coredns"), "-conf", str(corefile)], ports

    # Health ---------------------------------------------------------------------------------

    def healthy(self, name: str) -> bool:
        if name == "containerd":
            return self.socket.exists() and sh(*self.ctr(), "version", check=False).returncode == 0
        url = {
            "kubelet": f"http://127.0.0.1:{self.ports['kubelet-healthz']}/healthz",
            "kube-proxy": f"http://127.0.0.1:{self.ports['proxy-healthz']}/livez",
            "coredns": f"http://127.0.0.1:{self.ports['coredns-ready']}/ready",
        }[name]
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def ready(self) -> bool:
        try:
            node = self.cluster.request("GET", f"/api/v1/nodes/{NAME}")
        except (urllib.error.URLError, OSError):
            return False
        conditions = node.get("status", {}).get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    def ctr(self) -> list[str]:
        return ["ctr", "--address", str(self.socket), "-n", "k8s.io"]

    def status(self) -> dict[str, str]:
        result = self.cluster.status()
        for name in ORDER:
            pid = self.processes.pid(name)
            state = "healthy" if pid and self.healthy(name) else "not healthy"
            result[name] = f"running (pid {pid}, {state})" if pid else "stopped"
        if self.processes.pid("kubelet"):
            result[f"node {NAME}"] = "Ready" if self.ready() else "not Ready"
        return result

    # Down -----------------------------------------------------------------------------------

    def down(self, progress: Callable[[str], None] = print) -> None:
        with _locked():
            owner = self.owner()
            if owner and owner["dir"] != str(self.dir):
                raise NodeBusy(f"the node of this machine is {owner['dir']}'s, not this one's")
            self._teardown(progress)

    def _teardown(self, progress: Callable[[str], None]) -> None:
        """Pods first (their sandboxes' networks are released by the CNI plugins), then the node,
        the control plane and what the node changed on the machine."""
        if self.processes.pid("kubelet") and self.cluster.healthy("kube-apiserver"):
            progress("stopping the pods…")
            self._drain()
        for name in reversed(ORDER):
            if name != "containerd":
                self.processes.stop(name)
        if self.processes.pid("containerd"):
            self._kill_containers()
        self.processes.stop("containerd")
        self.cluster.down()
        progress("removing what the node left on the machine…")
        sh(tool("kube-proxy"), "--cleanup", check=False)
        _remove_iptables_leftovers()
        self._unmount()
        _remove_cgroups()
        for link in (POD_BRIDGE, NODE_BRIDGE):
            sh("ip", "link", "del", link, check=False)
        for path in CONTAINER_LOGS.glob("*.log") if CONTAINER_LOGS.exists() else ():
            if path.is_symlink() and str(self.dir) in os.readlink(path):
                path.unlink()
        _rmdir_if_empty(CONTAINER_LOGS)
        for name in ("kubelet.sock", "kubelet_internal_checkpoint"):
            (DEVICE_PLUGINS / name).unlink(missing_ok=True)
        _rmdir_if_empty(DEVICE_PLUGINS)
        _rmdir_if_empty(DEVICE_PLUGINS.parent)
        for path in (
            CNI_STATE / "networks" / CNI_NETWORK,
            *CNI_STATE.glob(f"results/{CNI_NETWORK}-*"),
        ):
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(
                missing_ok=True
            )
        for directory in (CNI_STATE / "results", CNI_STATE / "networks", CNI_STATE):
            _rmdir_if_empty(directory)
        shutil.rmtree(SHIM_SOCKETS, ignore_errors=True)
        self._restore_sysctls()
        # A fresh cluster next time, with empty volumes; the image store (containerd/root) and the
        # logs are kept.
        for name in ("etcd", "kubelet", "pod-logs", "pki", "run", "cni", "coredns", "volumes",
                     "containerd/state", "containerd/opt"):  # fmt: skip
            shutil.rmtree(self.dir / name, ignore_errors=True)
        LOCK.write_text("")

    def _drain(self) -> None:
        """Delete every pod and wait for the kubelet to stop them; the controllers stop first so
        that nothing is recreated."""
        self.cluster.down(("kube-controller-manager", "kube-scheduler"))
        try:
            pods = self.cluster.request("GET", "/api/v1/pods")["items"]
            for pod in pods:
                meta = pod["metadata"]
                path = f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}"
                try:
                    self.cluster.request("DELETE", path, {"gracePeriodSeconds": 5})
                except urllib.error.HTTPError as error:
                    if error.code != 404:
                        raise
            # A pod leaves the API once the kubelet has stopped it and released its network.
            deadline = time.monotonic() + 90
            while (
                time.monotonic() < deadline and self.cluster.request("GET", "/api/v1/pods")["items"]
            ):
                time.sleep(1)
        except (urllib.error.URLError, OSError):
            pass  # what is left is killed below

    def _kill_containers(self) -> None:
        for task in sh(*self.ctr(), "tasks", "ls", "-q", check=False).stdout.split():
            sh(*self.ctr(), "tasks", "kill", "-s", "SIGKILL", task, check=False)
        time.sleep(1)
        for task in sh(*self.ctr(), "tasks", "ls", "-q", check=False).stdout.split():
            sh(*self.ctr(), "tasks", "delete", "-f", task, check=False)
        for container in sh(*self.ctr(), "containers", "ls", "-q", check=False).stdout.split():
            sh(*self.ctr(), "containers", "delete", container, check=False)

    def _unmount(self) -> None:
        """Every mount under the state dir, the shims' and the pods' network namespaces."""
        prefixes = (str(self.dir), str(SHIM_SOCKETS), str(NETNS / "cni-"))
        for target in sorted(_mounts(), key=len, reverse=True):
            if target.startswith(prefixes):
                sh("umount", "-l", target, check=False)
        for netns in NETNS.glob("cni-*") if NETNS.exists() else ():
            netns.unlink(missing_ok=True)
        _rmdir_if_empty(NETNS)

    def _restore_sysctls(self) -> None:
        path = self.dir / "sysctls.json"
        if path.exists():
            for key, value in json.loads(path.read_text()).items():
                if value is not None:
                    _set_sysctl(key, value)
            path.unlink()


# The machine ----------------------------------------------------------------------------


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    """Serialises up and down on this machine; never waits for another one to finish."""
    LOCK.parent.mkdir(parents=True, exist_ok=True)
    with LOCK.open("a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise NodeBusy(
                f"another node is starting or stopping on this machine ({LOCK} is locked)"
            ) from None
        yield


def _lock_record() -> dict | None:
    try:
        return json.loads(LOCK.read_text() or "null")
    except (OSError, ValueError):
        return None


def _alive(record: dict) -> bool:
    pid = int(record.get("pid") or 0)
    return pid > 0 and alive(pid)


def reclaim(progress: Callable[[str], None] = print, env: dict[str, str] | None = None) -> None:
    """Remove what a node that never ran `down` (its processes killed) left on the machine."""
    with _locked():
        _reclaim(progress, env)


def _reclaim(progress: Callable[[str], None], env: dict[str, str] | None) -> None:
    """The lock still names the dead node: its own teardown removes its iptables chains, bridges,
    mounts and cgroups and restores the sysctls it recorded. Called with the lock held."""
    record = _lock_record()
    if not record or _alive(record) or not record.get("dir"):
        return
    progress(f"removing what the node of {record['dir']} left: it was never stopped…")
    Node(Path(record["dir"]), env)._teardown(progress)


# Configuration ------------------------------------------------------------------------------


def _versions() -> dict[str, str]:
    pairs = (
        line.split("=", 1)
        for line in (HERE / "versions.env").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    return {k: v for k, v in pairs}


def _containerd_config(state: Path, socket: Path) -> str:
    """containerd 1.6's CRI for this machine: root lacks CAP_SYS_RESOURCE here, so runc must not
    lower oom_score_adj below its own; no AppArmor, no hugetlb cgroup; cgroupfs like the kubelet;
    the sandbox image is the locally built pause."""
    pause = subprocess.run(
        [str(HERE / "images.sh"), "ref", "pause"], check=True, capture_output=True, text=True
    ).stdout.strip()
    return f"""version = 2
root = "{state / "containerd" / "root"}"
state = "{state / "containerd" / "state"}"
[grpc]
  address = "{socket}"
[ttrpc]
  address = "{socket}.ttrpc"
[debug]
  level = "warn"
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause}"
  restrict_oom_score_adj = true
  disable_apparmor = true
  disable_hugetlb_controller = true
  tolerate_missing_hugetlb_controller = true
  systemd_cgroup = false
  enable_selinux = false
  stream_server_address = "127.0.0.1"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN}"
    conf_dir = "{state / "cni"}"
    max_conf_num = 1
[plugins."io.containerd.internal.v1.opt"]
  path = "{state / "containerd" / "opt"}"
"""


def _cni_config(state: Path) -> dict:
    gateway = POD_CIDR.rsplit(".", 1)[0] + ".1"
    return {
        "cniVersion": "0.4.0",
        "name": CNI_NETWORK,
        "plugins": [
            {
                "type": "bridge",
                "bridge": POD_BRIDGE,
                "isGateway": True,
                "isDefaultGateway": False,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_CIDR, "gateway": gateway}]],
                    # Only the cluster is reachable: the node and the Services.
                    "routes": [{"dst": f"{NODE_IP}/32"}, {"dst": SERVICE_CIDR}],
                },
            },
        ],
    }


def _storage_class() -> dict:
    """Static volumes only (no provisioner), bound once the pod is scheduled, kept when released."""
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": STORAGE_CLASS,
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
        },
        "provisioner": "kubernetes.io/no-provisioner",
        "volumeBindingMode": "WaitForFirstConsumer",
        "reclaimPolicy": "Retain",
    }


def _local_volume(name: str, path: Path) -> dict:
    on_this_node = {"key": "kubernetes.io/hostname", "operator": "In", "values": [NAME]}
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name},
        "spec": {
            "capacity": {"storage": VOLUME_CAPACITY},
            "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": STORAGE_CLASS,
            "volumeMode": "Filesystem",
            "local": {"path": str(path)},
            "nodeAffinity": {
                "required": {"nodeSelectorTerms": [{"matchExpressions": [on_this_node]}]}
            },
        },
    }


def _kubelet_config(node: Node) -> dict:
    pki = node.dir / "pki"
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": NODE_IP,
        "port": node.ports["kubelet"],
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": node.ports["kubelet-healthz"],
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(pki / "kubelet-ca.crt")},
        },
        "authorization": {"mode": "Webhook"},
        "containerRuntimeEndpoint": f"unix://{node.socket}",
        # This machine: cgroup v1 (refused by default since 1.35), swap allowed, cgroupfs.
        "failCgroupV1": False,
        "failSwapOn": False,
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": f"/{CGROUP_ROOT}",
        "clusterDNS": [NODE_IP],
        "clusterDomain": "cluster.local",
        "resolvConf": "",
        "podLogsDir": str(node.dir / "pod-logs"),
        "staticPodPath": "",
        "serializeImagePulls": False,
        "registerNode": True,
        "maxPods": 60,
        "podPidsLimit": 4096,
        "evictionHard": {"memory.available": "200Mi", "nodefs.available": "5%",
                         "imagefs.available": "5%"},
        "imageGCHighThresholdPercent": 100,
        "shutdownGracePeriod": "0s",
    }  # fmt: skip


# The machine ---------------------------------------------------------------------------------


def _sysctl(key: str) -> str | None:
    try:
        return (Path("/proc/sys") / key.replace(".", "/")).read_text().strip()
    except OSError:
        return None


def _set_sysctl(key: str, value: str) -> None:
    (Path("/proc/sys") / key.replace(".", "/")).write_text(value)


def _mounts() -> list[str]:
    lines = Path("/proc/self/mountinfo").read_text().splitlines()
    return [line.split()[4].replace("\\040", " ") for line in lines]


def _cgroup_controllers() -> list[str]:
    return sorted(
        p.name
        for p in CGROUPS.iterdir()
        if p.is_dir() and not p.is_symlink() and p.name != "unified"
    )


def _remove_cgroups() -> None:
    """The node's cgroup tree in every hierarchy, innermost first (rmdir of an empty cgroup)."""
    for controller in [*_cgroup_controllers(), "unified"]:
        root = CGROUPS / controller / CGROUP_ROOT
        if not root.exists():
            continue
        for directory in sorted(
            (p for p in root.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)
        ):
            directory.rmdir()
        root.rmdir()


def _remove_iptables_leftovers() -> None:
    """What kube-proxy --cleanup does not own: the kubelet's chains (KUBE-FIREWALL,
    KUBE-KUBELET-CANARY, KUBE-IPTABLES-HINT) and the CNI plugins', IPv4 and IPv6, every table."""
    for iptables in ("iptables", "ip6tables"):
        for table in ("filter", "nat", "mangle"):
            rules = sh(f"{iptables}-save", "-t", table, check=False).stdout.splitlines()
            chains = [
                r[1:].split()[0]
                for r in rules
                if r.startswith(":") and r[1:].startswith(("KUBE-", "CNI-"))
            ]
            for rule in rules:
                if rule.startswith("-A ") and any(f"-j {c}" in rule for c in chains):
                    sh(iptables, "-t", table, "-D", *shlex.split(rule[3:]), check=False)
            for chain in chains:
                sh(iptables, "-t", table, "-F", chain, check=False)
            for chain in chains:
                sh(iptables, "-t", table, "-X", chain, check=False)


def _rmdir_if_empty(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.rmdir()


def main(argv: list[str]) -> int:
    node = Node()
    command = argv[0] if argv else "status"
    try:
        if command == "up":
            seconds = node.up()
            print(f"node up in {seconds:.1f}s; export KUBECONFIG={node.kubeconfig}")
        elif command == "down":
            node.down()
        elif command == "status":
            for name, state in node.status().items():
                print(f"{name:24} {state}")
        elif command == "kubeconfig":
            print(node.kubeconfig)
        elif command == "socket":
            print(node.socket)
        elif command == "running":  # exit status only: this checkout's node runs
            return 0 if node.processes.pid("containerd") else 1
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except (StartupError, NodeBusy) as error:
        print(f"node.py: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
