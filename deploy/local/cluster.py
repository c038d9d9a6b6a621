"""The Kubernetes control plane of the local node: etcd, kube-apiserver, kube-controller-manager
and kube-scheduler as processes, built from their Go modules. deploy/local/node.py adds the node
(containerd, kubelet, kube-proxy, CoreDNS) and is what `make node-up` runs; this module is its
control-plane half.

The state (certificates, keys, tokens, etcd data, logs, pid files, the kubeconfigs) lives in the
given state directory; ports move with PULSE_CLUSTER_PORT_OFFSET. Standard library only, so
tests import it.
"""

from __future__ import annotations

import json
import os
import secrets
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
from processes import Processes, tool, warn_if_ephemeral

REPO = Path(__file__).resolve().parents[2]

PORTS = {
    "etcd": 23790,
    "etcd-peer": 23800,
    "apiserver": 16443,
    "controller-manager": 10257,
    "scheduler": 10259,
}
ORDER = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
READY_TIMEOUT_S = 120.0
# Clients with their own identity besides the admin: name -> (user, groups). The node's kubelet
# is authorized by the Node authorizer, kube-proxy by the bootstrap role system:node-proxier.
IDENTITIES: dict[str, tuple[str, str]] = {}


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
        f"--bind-address={c.host}",
        f"--advertise-address={c.host}",
        f"--secure-port={c.ports['apiserver']}",
        f"--cert-dir={pki}",
        f"--token-auth-file={pki / 'tokens.csv'}",
        "--authorization-mode=Node,RBAC",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-account-key-file={pki / 'sa.pub'}",
        f"--service-account-signing-key-file={pki / 'sa.key'}",
        f"--service-cluster-ip-range={c.service_cidr}",
        *c.apiserver_flags,
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
        f"--service-cluster-ip-range={c.service_cidr}",
    ]


def _scheduler(c: Cluster) -> list[str]:
    return _controller(c, "scheduler")


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
}


class Cluster:
    """The control plane in ``state_dir``; the API server listens on ``host`` (the node's
    address, which pods reach), the others on loopback."""

    def __init__(
        self,
        state_dir: Path,
        env: dict[str, str] | None = None,
        host: str = "127.0.0.1",
        service_cidr: str = "10.96.0.0/16",
        identities: dict[str, tuple[str, str]] | None = None,
        apiserver_flags: tuple[str, ...] = (),
    ) -> None:
        self.env = dict(os.environ if env is None else env)
        self.dir = Path(state_dir).resolve()
        offset = int(self.env.get("PULSE_CLUSTER_PORT_OFFSET", "0"))
        self.ports = {k: v + offset for k, v in PORTS.items()}
        self.host = host
        self.service_cidr = service_cidr
        self.identities = identities or IDENTITIES
        self.apiserver_flags = apiserver_flags
        self.server = f"https://{host}:{self.ports['apiserver']}"
        self.kubeconfig = self.dir / "kubeconfig"
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
        identities = {"admin": ("admin", "system:masters"), **self.identities}
        lines = []
        for name, (user, groups) in identities.items():
            token = secrets.token_hex(24)
            lines.append(f'{token},{user},{user},"{groups}"\n')
            path = self.kubeconfig_of(name)
            path.write_text(_kubeconfig(self.server, self.ca_file, token, user))
            path.chmod(0o600)
        (pki / "tokens.csv").write_text("".join(lines))
        (pki / "tokens.csv").chmod(0o600)

    def kubeconfig_of(self, name: str) -> Path:
        """The kubeconfig of one identity: the admin's is ``kubeconfig`` in the state dir."""
        return self.kubeconfig if name == "admin" else self.dir / "pki" / f"{name}.kubeconfig"

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

    def up(self, progress: Callable[[str], None] = print) -> None:
        """Start the control plane, each component once the one before it is healthy."""
        started = time.monotonic()
        warn_if_ephemeral(self.ports, progress)
        self._credentials()
        for name in ORDER:
            progress(f"starting {name}…")
            self.start(name)
            self.processes.wait(name, lambda n=name: self.healthy(n), READY_TIMEOUT_S)
            progress(f"  {name} ready ({time.monotonic() - started:.1f}s)")

    def down(self, names: tuple[str, ...] = ORDER) -> None:
        for name in reversed(names):
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


def _kubeconfig(server: str, ca_file: Path, token: str, user: str = "admin") -> str:
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
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [
                {"name": "pulse-local", "context": {"cluster": "pulse-local", "user": user}}
            ],
            "current-context": "pulse-local",
        },
        indent=2,
    )
