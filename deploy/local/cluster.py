#!/usr/bin/env python3
"""A Kubernetes control plane without containers: etcd, kube-apiserver, kube-controller-manager
and kube-scheduler as processes on loopback, with kwok faking a node and the pods scheduled on
it. Real API semantics (admission, validation, RBAC, controllers, rollout status) for `helm
install` and `pulse doctor`; no container ever runs, so the pods' processes do not exist.

    cluster.py up | down | status | kubeconfig

The state (certificates, keys, etcd data, logs, pid files, the admin kubeconfig) lives in
PULSE_CLUSTER_DIR, default .cluster/ in the repository; ports move with
PULSE_CLUSTER_PORT_OFFSET. Standard library only, so tests import it.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from processes import Processes, StartupError, tool, warn_if_ephemeral

REPO = Path(__file__).resolve().parents[2]

PORTS = {
    "etcd": 23790,
    "etcd-peer": 23800,
    "apiserver": 16443,
    "controller-manager": 10257,
    "scheduler": 10259,
    "kwok": 10247,
}
ORDER = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
NODE = "kwok-node-0"
SERVICE_CIDR = "10.96.0.0/16"
READY_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Component:
    tool: str
    args: Callable[[Cluster], list[str]]
    health: Callable[[Cluster], str]
    ports: tuple[str, ...]  # the keys of PORTS it listens on


def _etcd(c: Cluster) -> list[str]:
    return [
        f"--data-dir={c.dir / 'etcd'}",
        f"--listen-client-urls=http://127.0.0.1:{c.ports['etcd']}",
        f"--listen-peer-urls=http://127.0.0.1:{c.ports['etcd-peer']}",
    ]


def _apiserver(c: Cluster) -> list[str]:
    pki = c.dir / "pki"
    return [
        f"--etcd-servers=http://127.0.0.1:{c.ports['etcd']}",
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        f"--secure-port={c.ports['apiserver']}",
        f"--cert-dir={pki}",
        f"--token-auth-file={pki / 'tokens.csv'}",
        "--authorization-mode=RBAC",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-account-key-file={pki / 'sa.pub'}",
        f"--service-account-signing-key-file={pki / 'sa.key'}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        # The loopback address cannot be the endpoint of the `kubernetes` Service.
        "--endpoint-reconciler-type=none",
    ]


def _controller(c: Cluster, name: str) -> list[str]:
    """Flags of a control-plane client with its own health port: the admin kubeconfig for its
    API calls and for delegated authentication and authorization, one instance, loopback only."""
    return [
        f"--kubeconfig={c.kubeconfig}",
        f"--authentication-kubeconfig={c.kubeconfig}",
        f"--authorization-kubeconfig={c.kubeconfig}",
        "--bind-address=127.0.0.1",
        f"--secure-port={c.ports[name]}",
        f"--cert-dir={c.dir / 'pki' / name}",
        "--leader-elect=false",
    ]


def _controller_manager(c: Cluster) -> list[str]:
    return [
        *_controller(c, "controller-manager"),
        f"--service-account-private-key-file={c.dir / 'pki' / 'sa.key'}",
        f"--root-ca-file={c.ca_file}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
    ]


def _scheduler(c: Cluster) -> list[str]:
    return _controller(c, "scheduler")


def _kwok(c: Cluster) -> list[str]:
    stages = Path(tool("kwok")).parent / "stages.yaml"  # written by build.sh next to kwok
    return [
        f"--kubeconfig={c.kubeconfig}",
        f"--config={stages}",
        "--manage-all-nodes=false",
        "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
        "--cidr=10.244.0.0/24",
        "--node-ip=10.244.0.1",
        f"--server-address=127.0.0.1:{c.ports['kwok']}",
    ]


COMPONENTS = {
    "etcd": Component(
        "etcd",
        _etcd,
        lambda c: f"http://127.0.0.1:{c.ports['etcd']}/health",
        ("etcd", "etcd-peer"),
    ),
    "kube-apiserver": Component(
        "kube-apiserver", _apiserver, lambda c: f"{c.server}/readyz", ("apiserver",)
    ),
    "kube-controller-manager": Component(
        "kube-controller-manager",
        _controller_manager,
        lambda c: f"https://127.0.0.1:{c.ports['controller-manager']}/healthz",
        ("controller-manager",),
    ),
    "kube-scheduler": Component(
        "kube-scheduler",
        _scheduler,
        lambda c: f"https://127.0.0.1:{c.ports['scheduler']}/healthz",
        ("scheduler",),
    ),
    "kwok": Component(
        "kwok", _kwok, lambda c: f"http://127.0.0.1:{c.ports['kwok']}/healthz", ("kwok",)
    ),
}


class Cluster:
    def __init__(self, state_dir: Path | None = None, env: dict[str, str] | None = None) -> None:
        self.env = dict(os.environ if env is None else env)
        default = REPO / ".cluster"
        self.dir = Path(state_dir or self.env.get("PULSE_CLUSTER_DIR") or default).resolve()
        offset = int(self.env.get("PULSE_CLUSTER_PORT_OFFSET", "0"))
        self.ports = {k: v + offset for k, v in PORTS.items()}
        self.server = f"https://127.0.0.1:{self.ports['apiserver']}"
        self.kubeconfig = self.dir / "admin.kubeconfig"
        self.processes = Processes(self.dir, "PULSE_CLUSTER_PORT_OFFSET")

    @property
    def ca_file(self) -> Path:
        # The serving certificate kube-apiserver generates, followed by its self-signed CA.
        return self.dir / "pki" / "apiserver.crt"

    # Credentials ----------------------------------------------------------------------------

    def _credentials(self) -> None:
        pki = self.dir / "pki"
        if (pki / "tokens.csv").exists():
            return
        pki.mkdir(parents=True, exist_ok=True)
        key, pub = pki / "sa.key", pki / "sa.pub"
        subprocess.run(["openssl", "genrsa", "-out", key, "2048"], check=True, capture_output=True)
        subprocess.run(
            ["openssl", "rsa", "-in", key, "-pubout", "-out", pub], check=True, capture_output=True
        )
        token = secrets.token_hex(24)
        (pki / "tokens.csv").write_text(f'{token},admin,admin,"system:masters"\n')
        (pki / "tokens.csv").chmod(0o600)
        self.kubeconfig.write_text(_kubeconfig(self.server, self.ca_file, token))
        self.kubeconfig.chmod(0o600)

    def admin_token(self) -> str:
        return (self.dir / "pki" / "tokens.csv").read_text().split(",", 1)[0]

    # API ------------------------------------------------------------------------------------

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def request(self, method: str, path: str, body: dict | None = None) -> dict:
        """One call to the API server as the admin user; the decoded JSON answer."""
        request = urllib.request.Request(
            self.server + path,
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={
                "Authorization": f"Bearer {self.admin_token()}",
                "Content-Type": "application/json",
            },
        )
        with urllib.request.urlopen(request, timeout=10, context=self._context()) as response:
            return json.load(response)

    def add_node(self, name: str = NODE) -> None:
        """A Node kwok keeps Ready, big enough for the whole chart."""
        capacity = {"cpu": "16", "memory": "64Gi", "pods": "110"}
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                "labels": {
                    "kubernetes.io/hostname": name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "type": "kwok",
                },
            },
            "status": {"capacity": capacity, "allocatable": capacity},
        }
        try:
            self.request("POST", "/api/v1/nodes", node)
        except urllib.error.HTTPError as error:
            if error.code != 409:  # already there
                raise

    def node_ready(self, name: str = NODE) -> bool:
        try:
            node = self.request("GET", f"/api/v1/nodes/{name}")
        except (urllib.error.URLError, OSError):
            return False
        conditions = node.get("status", {}).get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    # Processes ------------------------------------------------------------------------------

    def healthy(self, name: str) -> bool:
        url = COMPONENTS[name].health(self)
        try:
            context = self._context() if name == "kube-apiserver" else _unverified()
            with urllib.request.urlopen(url, timeout=2, context=context) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError, ValueError, ssl.SSLError):
            return False

    def start(self, name: str) -> None:
        if self.processes.pid(name) is None:
            component = COMPONENTS[name]
            ports = {key: self.ports[key] for key in component.ports}
            self.processes.start(name, [tool(component.tool), *component.args(self)], ports=ports)

    def up(self, fresh: bool = False, progress: Callable[[str], None] = print) -> float:
        """Start the control plane and kwok, add the fake node; return the seconds it took."""
        if fresh and self.dir.exists():
            self.down()
            shutil.rmtree(self.dir)
        started = time.monotonic()
        warn_if_ephemeral(self.ports, progress)
        self._credentials()
        try:
            for name in ORDER:
                progress(f"starting {name}…")
                self.start(name)
                self.processes.wait(name, lambda n=name: self.healthy(n), READY_TIMEOUT_S)
                progress(f"  {name} ready ({time.monotonic() - started:.1f}s)")
            self.add_node()
            self.processes.wait(f"node {NODE}", self.node_ready, READY_TIMEOUT_S, process="kwok")
            progress(f"  node {NODE} Ready ({time.monotonic() - started:.1f}s)")
        except StartupError:
            self.down()
            raise
        return time.monotonic() - started

    def down(self) -> None:
        for name in reversed(ORDER):
            self.processes.stop(name)

    def status(self) -> dict[str, str]:
        result = {}
        for name in ORDER:
            pid = self.processes.pid(name)
            state = "healthy" if pid and self.healthy(name) else "not healthy"
            result[name] = f"running (pid {pid}, {state})" if pid else "stopped"
        return result


def _unverified() -> ssl.SSLContext:
    # Health of the controller-manager and scheduler: self-signed, loopback, no secret read.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _kubeconfig(server: str, ca_file: Path, token: str) -> str:
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "pulse-local",
                    "cluster": {"server": server, "certificate-authority": str(ca_file)},
                }
            ],
            "users": [{"name": "admin", "user": {"token": token}}],
            "contexts": [
                {"name": "pulse-local", "context": {"cluster": "pulse-local", "user": "admin"}}
            ],
            "current-context": "pulse-local",
        },
        indent=2,
    )


def main(argv: list[str]) -> int:
    cluster = Cluster()
    command = argv[0] if argv else "status"
    try:
        if command == "up":
            seconds = cluster.up()
            print(f"cluster up in {seconds:.1f}s; export KUBECONFIG={cluster.kubeconfig}")
        elif command == "down":
            cluster.down()
        elif command == "status":
            for name, state in cluster.status().items():
                print(f"{name:24} {state}")
        elif command == "kubeconfig":
            print(cluster.kubeconfig)
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except StartupError as error:
        print(f"cluster.py: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
