"""Kubernetes checks of a Helm release, and the way to reach its backends: the API server's
service proxy from outside the cluster, cluster DNS from inside it."""

from __future__ import annotations

from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from pulse.doctor.checks import LOGS_BACKENDS, Check, DirectBackends, https_context

__all__ = [
    "ServiceProxyBackends",
    "connect",
    "dns_backends",
    "logs_backend",
    "rollout_check",
    "workload_checks",
]

# HTTP port of each backend the checks read, and its app.kubernetes.io/component label in the
# Helm chart (deploy/helm/pulse).
PORTS = {"pulse": 9464, "prometheus": 9090, "jaeger": 16686, "loki": 3100, "victorialogs": 9428}
COMPONENTS = {"pulse": "server", "prometheus": "prometheus", "jaeger": "jaeger"}
COMPONENTS |= {backend: backend for backend in LOGS_BACKENDS}


def connect(kubeconfig: str | None, context: str | None, in_cluster: bool) -> client.ApiClient:
    if in_cluster:
        config.load_incluster_config()
    else:
        config.load_kube_config(config_file=kubeconfig, context=context)
    return client.ApiClient()


def _selector(release: str, component: str | None = None) -> str:
    selector = f"app.kubernetes.io/instance={release}"
    return f"{selector},app.kubernetes.io/component={component}" if component else selector


def rollout_check(kind: str, workload: Any, namespace: str) -> Check:
    """Whether a Deployment or StatefulSet has rolled out its current spec and is ready, by the
    rules of `kubectl rollout status`: the spec observed, every replica updated, no old replica
    left, every replica ready; a stalled rollout says so."""
    name = workload.metadata.name
    desired = workload.spec.replicas if workload.spec.replicas is not None else 1
    status = workload.status
    updated = status.updated_replicas or 0
    problems = []
    if (status.observed_generation or 0) < (workload.metadata.generation or 0):
        problems.append("the controller has not seen the latest spec")
    if any(
        c.type == "Progressing" and c.reason == "ProgressDeadlineExceeded"
        for c in status.conditions or []
    ):
        problems.append("the rollout exceeded its progress deadline")
    if updated < desired:
        problems.append(f"{updated}/{desired} replicas updated")
    if (status.replicas or 0) > updated:
        problems.append(f"{status.replicas - updated} old replicas still running")
    if (status.ready_replicas or 0) < desired:
        problems.append(f"{status.ready_replicas or 0}/{desired} replicas ready")
    title = f"{kind} {name} rolled out and ready"
    if not problems:
        return Check(title, True, f"{desired}/{desired} ready")
    resource = f"{kind.lower()}/{name}"
    return Check(
        title,
        False,
        "; ".join(problems),
        f"kubectl -n {namespace} describe {resource}; kubectl -n {namespace} logs {resource}",
    )


def workload_checks(api: client.ApiClient, namespace: str, release: str) -> list[Check]:
    apps = client.AppsV1Api(api)
    selector = _selector(release)
    workloads = [
        ("Deployment", d)
        for d in apps.list_namespaced_deployment(namespace, label_selector=selector).items
    ] + [
        ("StatefulSet", s)
        for s in apps.list_namespaced_stateful_set(namespace, label_selector=selector).items
    ]
    if not workloads:
        return [
            Check(
                f"Release {release} has workloads",
                False,
                f"no Deployment or StatefulSet labelled {selector} in namespace {namespace}",
                f"helm -n {namespace} status {release}; is the namespace or release name right?",
            )
        ]
    return [rollout_check(kind, w, namespace) for kind, w in workloads]


def _service(
    api: client.ApiClient, namespace: str, release: str, component: str
) -> tuple[str, int, str]:
    """(name, port, scheme) of the component's Service; the scheme is the port's appProtocol
    (https for Pulse's admin port under TLS)."""
    selector = _selector(release, COMPONENTS[component])
    services = client.CoreV1Api(api).list_namespaced_service(namespace, label_selector=selector)
    for service in services.items:
        for port in service.spec.ports or []:
            if port.port == PORTS[component]:
                scheme = "https" if port.app_protocol == "https" else "http"
                return service.metadata.name, port.port, scheme
    raise LookupError(f"no Service labelled {selector} with port {PORTS[component]}")


def logs_backend(api: client.ApiClient, namespace: str, release: str) -> str | None:
    """The logs backend the release deploys (chart value logs.backend): the one with a Service."""
    for backend in LOGS_BACKENDS:
        try:
            _service(api, namespace, release, backend)
        except LookupError:
            continue
        return backend
    return None


class ServiceProxyBackends:
    """Backends reached through the API server: /api/v1/namespaces/NS/services/S:P/proxy/…"""

    def __init__(self, api: client.ApiClient, namespace: str, release: str) -> None:
        self.api, self.namespace, self.release = api, namespace, release
        self._found: dict[str, tuple[str, int, str]] = {}

    def _resolve(self, component: str) -> tuple[str, int, str]:
        if component not in self._found:
            self._found[component] = _service(self.api, self.namespace, self.release, component)
        return self._found[component]

    def where(self, component: str) -> str:
        try:
            name, port, _ = self._resolve(component)
        except LookupError as error:
            return str(error)
        return f"service {self.namespace}/{name}:{port} (API server proxy)"

    def get(
        self,
        component: str,
        path: str,
        params: dict[str, Any] | None = None,
        also_ok: tuple[int, ...] = (),
    ) -> bytes:
        name, port, scheme = self._resolve(component)
        service = f"https:{name}:{port}" if scheme == "https" else f"{name}:{port}"
        method, url, headers, _, _ = self.api.param_serialize(
            "GET",
            f"/api/v1/namespaces/{self.namespace}/services/{service}/proxy{path}",
            query_params=list((params or {}).items()),
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        try:
            response = self.api.call_api(method, url, header_params=headers, _request_timeout=15)
        except (ApiException, urllib3.exceptions.HTTPError) as error:
            raise ConnectionError(f"API server unreachable: {error}") from error
        if not 200 <= response.status < 300 and response.status not in also_ok:
            body = (response.read() or b"").decode(errors="replace").strip()
            raise ConnectionError(f"API server proxy: {response.status} {body[:200]}")
        return response.read()


def dns_backends(
    api: client.ApiClient, namespace: str, release: str, ca_file: str | None = None
) -> DirectBackends:
    """Backends at their cluster DNS names, for a doctor running inside the cluster; HTTPS ones
    verified against ``ca_file`` when given."""
    urls, contexts = {}, {}
    for component in PORTS:
        try:
            name, port, scheme = _service(api, namespace, release, component)
        except LookupError:
            continue
        urls[component] = f"{scheme}://{name}.{namespace}.svc:{port}"
        if scheme == "https":
            contexts[component] = https_context(ca_file)
    return DirectBackends(urls, contexts=contexts)
