"""``pulse doctor``: a checklist of the deployed stack, with the fix for each failure."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from pulse.cli.common import EXIT_USAGE

__all__ = ["add_parsers"]

DESCRIPTION = """Check a Pulse deployment end to end: every workload of the Helm release rolled
out and ready, Pulse serving, the collector exporting without failures, and Pulse's traces,
metrics and logs present in Jaeger, Prometheus and the logs backend (Loki or VictoriaLogs).
Backends are found by the release's labels and reached through the API server's service proxy
(or cluster DNS with --in-cluster); an address given on the command line wins, e.g. for a
backend outside the cluster. With --no-kubernetes and every address, it checks a stack without
Kubernetes (the local stack)."""

ADDRESSES = {
    "pulse": "pulse-admin",
    "prometheus": "prometheus",
    "jaeger": "jaeger",
    "loki": "loki",
    "victorialogs": "victorialogs",
}
EXAMPLE_PORTS = {
    "pulse": 9464,
    "prometheus": 9090,
    "jaeger": 16686,
    "loki": 3100,
    "victorialogs": 9428,
}


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("doctor", help="check a deployed stack end to end", description=DESCRIPTION)
    cluster = p.add_argument_group("Kubernetes")
    cluster.add_argument(
        "--kubeconfig", help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)"
    )
    cluster.add_argument("--context", help="kubeconfig context")
    cluster.add_argument(
        "--in-cluster", action="store_true", help="use the pod's service account and cluster DNS"
    )
    cluster.add_argument("-n", "--namespace", default="pulse", help="namespace (default: pulse)")
    cluster.add_argument("--release", default="pulse", help="Helm release (default: pulse)")
    cluster.add_argument(
        "--no-kubernetes",
        action="store_true",
        help="skip the cluster: check the backends at the addresses given (Pulse's, Prometheus's, "
        "Jaeger's and one logs backend's)",
    )
    p.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=["prometheus", "jaeger", "loki", "victorialogs"],
        help="leave out the checks that need this backend (repeatable), e.g. when it is not "
        "deployed",
    )
    p.add_argument(
        "--wait",
        type=float,
        default=0,
        metavar="SECONDS",
        help="repeat the checks until they all pass or SECONDS have gone (a fresh install needs "
        "a minute or two before telemetry arrives)",
    )
    p.add_argument(
        "--tls-ca",
        metavar="FILE",
        help="CA certificate to verify Pulse's HTTPS admin port against (the chart's TLS Secret's "
        "ca.crt); without it, --in-cluster does not verify that port's certificate",
    )
    addresses = p.add_argument_group("backend addresses (override what is found in the cluster)")
    for component, flag in ADDRESSES.items():
        addresses.add_argument(
            f"--{flag}", metavar="URL", help=f"e.g. http://localhost:{EXAMPLE_PORTS[component]}"
        )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pulse.doctor.report import print_report

    deadline = time.monotonic() + args.wait
    while True:
        checks = _checks(args)
        if isinstance(checks, int):
            return checks
        failing = [c.name for c in checks if not c.ok]
        if not failing or time.monotonic() >= deadline:
            break
        print(f"waiting: {len(failing)} checks failing ({', '.join(failing)})", file=sys.stderr)
        time.sleep(min(10.0, max(0.0, deadline - time.monotonic())))
    return 0 if print_report(checks, sys.stdout) else 1


def _checks(args: argparse.Namespace) -> list[Any] | int:
    """The checklist, or an exit status when the arguments cannot make one."""
    from pulse.doctor.checks import LOGS_BACKENDS, DirectBackends, backend_checks, https_context

    if args.tls_ca and not Path(args.tls_ca).is_file():
        print(f"pulse doctor: --tls-ca {args.tls_ca}: no such file", file=sys.stderr)
        return EXIT_USAGE
    given = {c: getattr(args, flag.replace("-", "_")) for c, flag in ADDRESSES.items()}
    given = {c: url for c, url in given.items() if url}
    if args.tls_ca and given.get("pulse", "").startswith("https:"):
        given_backends = DirectBackends(given, contexts={"pulse": https_context(args.tls_ca)})
    else:
        given_backends = DirectBackends(given)
    logs = [c for c in LOGS_BACKENDS if c in given]
    if len(logs) > 1:
        print("pulse doctor: give one logs backend, --loki or --victorialogs", file=sys.stderr)
        return EXIT_USAGE
    if args.no_kubernetes:
        missing = [
            f"--{flag}"
            for c, flag in ADDRESSES.items()
            if c not in LOGS_BACKENDS and c not in given and c not in args.skip
        ]
        if not logs and not set(args.skip) & set(LOGS_BACKENDS):
            missing.append("--loki or --victorialogs")
        if missing:
            print(
                f"pulse doctor: --no-kubernetes needs every address; missing {missing}",
                file=sys.stderr,
            )
            return EXIT_USAGE
        return backend_checks(given_backends, frozenset(args.skip), logs[0] if logs else None)
    return _cluster_checks(args, given_backends, logs[0] if logs else None)


def _cluster_checks(args: argparse.Namespace, given: Any, logs: str | None) -> list[Any]:
    from kubernetes.config.config_exception import ConfigException

    from pulse.doctor.checks import Check, LayeredBackends, backend_checks
    from pulse.doctor.kube import (
        ServiceProxyBackends,
        connect,
        dns_backends,
        logs_backend,
        workload_checks,
    )

    try:
        api = connect(args.kubeconfig, args.context, args.in_cluster)
    except (ConfigException, OSError) as error:
        return [
            Check(
                "Kubernetes API reachable",
                False,
                str(error),
                "pass --kubeconfig/--context, or --in-cluster inside a pod",
            )
        ]
    try:
        checks = workload_checks(api, args.namespace, args.release)
    except Exception as error:  # the API server's answer, whatever its type
        return [
            Check(
                "Kubernetes API reachable",
                False,
                f"listing workloads failed: {error}",
                "check the kubeconfig's credentials and the RBAC of its user",
            )
        ]
    backends = (
        dns_backends(api, args.namespace, args.release, args.tls_ca)
        if args.in_cluster
        else ServiceProxyBackends(api, args.namespace, args.release)
    )
    logs = logs or logs_backend(api, args.namespace, args.release)
    return checks + backend_checks(LayeredBackends(given, backends), frozenset(args.skip), logs)
