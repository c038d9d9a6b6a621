"""Backend checks: each asks one question of Pulse, Prometheus, Jaeger or the logs backend (Loki
or VictoriaLogs) and, when the answer is wrong, names the fix."""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = [
    "LOGS_BACKENDS",
    "Backends",
    "Check",
    "DirectBackends",
    "LayeredBackends",
    "backend_checks",
    "https_context",
]


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


class Backends(Protocol):
    """Reaches a component's HTTP API: ``get("loki", "/ready", {...})`` returns the body."""

    def get(
        self,
        component: str,
        path: str,
        params: dict[str, Any] | None = None,
        also_ok: tuple[int, ...] = (),
    ) -> bytes:
        """The body of a 2xx answer, or of one whose status is in ``also_ok``."""
        ...

    def where(self, component: str) -> str: ...


class DirectBackends:
    """Backends at known base URLs (the local stack, or in-cluster DNS names)."""

    def __init__(
        self,
        urls: dict[str, str],
        timeout_s: float = 10.0,
        contexts: Mapping[str, ssl.SSLContext] | None = None,
    ) -> None:
        self.urls = {k: v.rstrip("/") for k, v in urls.items() if v}
        self.timeout_s = timeout_s
        # Components reached over HTTPS with a context of their own rather than the system's
        # CAs: Pulse's admin port, whose certificate the chart's own CA signs (https_context).
        self._contexts = dict(contexts or {})

    def where(self, component: str) -> str:
        return self.urls.get(component, "(no address given)")

    def get(
        self,
        component: str,
        path: str,
        params: dict[str, Any] | None = None,
        also_ok: tuple[int, ...] = (),
    ) -> bytes:
        if component not in self.urls:
            raise LookupError(f"no address for {component}")
        url = self.urls[component] + path
        if params:
            url += "?" + urllib.parse.urlencode(params)
        context = self._contexts.get(component)
        try:
            with urllib.request.urlopen(url, timeout=self.timeout_s, context=context) as response:
                return response.read()
        except urllib.error.HTTPError as error:
            if error.code in also_ok:
                return error.read()
            raise


def https_context(ca_file: str | None) -> ssl.SSLContext:
    """Verified against ``ca_file`` (--tls-ca); without one, not verified at all: the doctor
    only reads /readyz there and sends nothing secret."""
    if ca_file:
        return ssl.create_default_context(cafile=ca_file)
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class LayeredBackends:
    """Addresses given on the command line first, then the ones found in the cluster."""

    def __init__(self, given: DirectBackends, found: Backends) -> None:
        self.given, self.found = given, found

    def _pick(self, component: str) -> Backends:
        return self.given if component in self.given.urls else self.found

    def where(self, component: str) -> str:
        return self._pick(component).where(component)

    def get(
        self,
        component: str,
        path: str,
        params: dict[str, Any] | None = None,
        also_ok: tuple[int, ...] = (),
    ) -> bytes:
        return self._pick(component).get(component, path, params, also_ok)


def _json(backends: Backends, component: str, path: str, **params: Any) -> Any:
    return json.loads(backends.get(component, path, params or None))


def _promql(backends: Backends, expr: str) -> list[dict[str, Any]]:
    reply = _json(backends, "prometheus", "/api/v1/query", query=expr)
    return reply["data"]["result"]


def _value(result: list[dict[str, Any]]) -> float:
    return sum(float(sample["value"][1]) for sample in result)


def pulse_serving(backends: Backends) -> Check:
    # Not ready is an answer (503), not an unreachable Pulse.
    reply = json.loads(backends.get("pulse", "/readyz", also_ok=(503,)))
    if reply.get("status") == "ready":
        return Check("Pulse is serving", True, f"/readyz ready at {backends.where('pulse')}")
    failing = [name for name, ok in reply.get("checks", {}).items() if ok is not True]
    return Check(
        "Pulse is serving",
        False,
        f"/readyz says {reply.get('status')}: {failing}",
        "look at the Pulse pod's log (kubectl logs) for the failing check",
    )


def collector_exporting(backends: Backends) -> Check:
    up = _promql(backends, 'up{job="otelcol"}')
    if not up or _value(up) < len(up):
        return Check(
            "Collector is up and scraped",
            False,
            'Prometheus does not scrape the collector (up{job="otelcol"} is 0 or missing)',
            "check the collector pod and the Prometheus scrape config for job otelcol",
        )
    sent = _value(_promql(backends, 'sum(rate({__name__=~"otelcol_exporter_sent_.+"}[5m]))'))
    failed = _value(
        _promql(
            backends,
            'sum(rate({__name__=~"otelcol_exporter_(send|enqueue)_failed_.+"}[5m]))',
        )
    )
    if failed > 0 or sent == 0:
        return Check(
            "Collector exports without failures",
            False,
            f"sending {sent:.1f} items/s, failing {failed:.1f} items/s",
            "read the collector's log: a failing exporter names its backend and error",
        )
    return Check("Collector exports without failures", True, f"sending {sent:.1f} items/s")


def traces_in_jaeger(backends: Backends, service: str = "pulse") -> Check:
    traces = _json(backends, "jaeger", "/api/traces", service=service, limit=1, lookback="1h")
    found = traces.get("data") or []
    if found:
        return Check("Pulse's traces are in Jaeger", True, f"trace {found[0]['traceID']}")
    return Check(
        "Pulse's traces are in Jaeger",
        False,
        f"no trace of service {service} in the last hour",
        "check OTEL_EXPORTER_OTLP_ENDPOINT of Pulse and the collector's traces pipeline",
    )


def metrics_in_prometheus(backends: Backends) -> Check:
    series = _promql(backends, 'count(rpc_server_call_duration_seconds_count{job="pulse"})')
    if series and _value(series) > 0:
        return Check("Pulse's metrics are in Prometheus", True, f"{_value(series):.0f} series")
    return Check(
        "Pulse's metrics are in Prometheus",
        False,
        "no rpc_server_call_duration series of job pulse",
        "enable Prometheus's OTLP receiver (--web.enable-otlp-receiver) and check the collector's "
        "metrics exporter",
    )


def logs_in_loki(backends: Backends) -> Check:
    now = time.time()
    reply = _json(
        backends,
        "loki",
        "/loki/api/v1/query_range",
        query='{service_name="pulse"}',
        limit=1,
        start=int((now - 3600) * 1e9),
        end=int(now * 1e9),
    )
    if reply["data"]["result"]:
        return Check("Pulse's logs are in Loki", True, '{service_name="pulse"} has lines')
    return Check(
        "Pulse's logs are in Loki",
        False,
        'no line of {service_name="pulse"} in the last hour',
        "check the collector's logs pipeline and Loki's OTLP endpoint (/otlp)",
    )


def logs_in_victorialogs(backends: Backends) -> Check:
    # JSON lines, one per record; an empty body is no record.
    body = backends.get(
        "victorialogs",
        "/select/logsql/query",
        {"query": '{service.name="pulse"} _time:1h', "limit": 1},
    )
    if body.strip():
        return Check("Pulse's logs are in VictoriaLogs", True, '{service.name="pulse"} has records')
    return Check(
        "Pulse's logs are in VictoriaLogs",
        False,
        'no record of {service.name="pulse"} in the last hour',
        "check the collector's logs pipeline and VictoriaLogs' OTLP endpoint "
        "(/insert/opentelemetry)",
    )


CHECKS: tuple[tuple[str, str, Callable[[Backends], Check]], ...] = (
    ("pulse", "Pulse is serving", pulse_serving),
    ("prometheus", "Collector exports without failures", collector_exporting),
    ("jaeger", "Pulse's traces are in Jaeger", traces_in_jaeger),
    ("prometheus", "Pulse's metrics are in Prometheus", metrics_in_prometheus),
)
# The logs check of each logs backend; a deployment has one of them.
LOGS_CHECKS: dict[str, tuple[str, Callable[[Backends], Check]]] = {
    "loki": ("Pulse's logs are in Loki", logs_in_loki),
    "victorialogs": ("Pulse's logs are in VictoriaLogs", logs_in_victorialogs),
}
LOGS_BACKENDS = tuple(LOGS_CHECKS)


def _unreachable(name: str, component: str, where: str, error: Exception) -> Check:
    return Check(
        name,
        False,
        f"{component} at {where} did not answer: {error}",
        f"is {component} running and its address right?",
    )


def backend_checks(
    backends: Backends, skip: frozenset[str] = frozenset(), logs: str | None = "loki"
) -> list[Check]:
    """Every check whose component is not in ``skip``; the logs check asks ``logs``, the logs
    backend deployed (None: none was found, which fails unless a logs backend is skipped)."""
    checks = list(CHECKS)
    if logs is not None:
        checks.append((logs, *LOGS_CHECKS[logs]))
    results = []
    if logs is None and not skip & set(LOGS_BACKENDS):
        results.append(
            Check(
                "Pulse's logs are in the logs backend",
                False,
                "no logs backend found (a Service of component loki or victorialogs)",
                "pass --loki or --victorialogs with its address, or --skip loki when there is none",
            )
        )
    for component, title, check in checks:
        if component in skip:
            continue
        try:
            results.append(check(backends))
        except (urllib.error.URLError, OSError, LookupError, ValueError, KeyError) as error:
            results.append(_unreachable(title, component, backends.where(component), error))
    return results
