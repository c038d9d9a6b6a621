"""``pulse doctor``: a checklist of the deployed stack, with the fix for each failure."""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["add_parsers"]

DESCRIPTION = """Check a Pulse deployment end to end: every workload of the Helm release rolled
out and ready, Pulse serving, the collector exporting without failures, and Pulse's traces,
metrics and logs present in Jaeger, Prometheus and Loki. With --prometheus/--loki/--jaeger/
--pulse-admin it checks those addresses directly (the local stack) and skips Kubernetes."""


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
    direct = p.add_argument_group("direct addresses (no Kubernetes)")
    for name, example in (
        ("pulse-admin", "9464"),
        ("prometheus", "9090"),
        ("jaeger", "16686"),
        ("loki", "3100"),
    ):
        direct.add_argument(f"--{name}", metavar="URL", help=f"e.g. http://localhost:{example}")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pulse.doctor.checks import DirectBackends, backend_checks
    from pulse.doctor.report import print_report

    direct = {
        "pulse": args.pulse_admin,
        "prometheus": args.prometheus,
        "jaeger": args.jaeger,
        "loki": args.loki,
    }
    if any(direct.values()):
        flags = {"pulse": "--pulse-admin"}
        missing = [flags.get(k, f"--{k}") for k, v in direct.items() if not v]
        if missing:
            print(
                f"pulse doctor: direct mode needs every address; missing {missing}", file=sys.stderr
            )
            return 2
        checks = backend_checks(DirectBackends(direct))
    else:
        checks = _cluster_checks(args)
    return 0 if print_report(checks, sys.stdout) else 1


def _cluster_checks(args: argparse.Namespace) -> list[Any]:
    from kubernetes.config.config_exception import ConfigException

    from pulse.doctor.checks import Check, backend_checks
    from pulse.doctor.kube import ServiceProxyBackends, connect, dns_backends, workload_checks

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
        dns_backends(api, args.namespace, args.release)
        if args.in_cluster
        else ServiceProxyBackends(api, args.namespace, args.release)
    )
    return checks + backend_checks(backends)
