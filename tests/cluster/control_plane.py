"""Helpers of the tests on the local control plane: helm and `pulse doctor` against it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cluster import Cluster

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy/helm/pulse"


def helm_path() -> str:
    out = subprocess.run(
        [str(REPO / "deploy/local/build.sh"), "path", "helm"],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    return out.stdout.strip().splitlines()[-1]


def helm(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [helm_path(), "--kubeconfig", str(cluster.kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def doctor(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pulse", "doctor", "--kubeconfig", str(kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
