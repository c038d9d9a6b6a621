"""The node's values name exactly the images deploy/local/images.sh builds, and each backend's
and engine's image carries the version versions.env pins for what it runs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy/helm/pulse"
IMAGES = REPO / "deploy/local/images.sh"
# chart section -> image name of images.sh, and the versions.env pin of its binary
BUILT = {
    "pulse": ("pulse", None),
    "collector": ("otelcol", "OTELCOL_VERSION"),
    "jaeger": ("jaeger", "JAEGER_MODULE_VERSION"),
    "prometheus": ("prometheus", "PROMETHEUS_VERSION"),
    "alertmanager": ("alertmanager", "ALERTMANAGER_VERSION"),
    "victorialogs": ("victorialogs", "VICTORIALOGS_VERSION"),
    "nats": ("nats", "NATS_SERVER_VERSION"),
    "postgresql": ("postgresql", "POSTGRESQL_MAJOR"),
}


def _versions() -> dict[str, str]:
    lines = (REPO / "deploy/local/versions.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


@pytest.mark.parametrize("section", sorted(BUILT))
def test_node_values_name_the_built_image(section: str) -> None:
    values = yaml.safe_load((CHART / "ci/node-values.yaml").read_text())
    app_version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    image = values[section]["image"]
    name, pin = BUILT[section]
    ref = subprocess.run([str(IMAGES), "ref", name], check=True, capture_output=True, text=True)
    assert f"{image['repository']}:{image.get('tag') or app_version}" == ref.stdout.strip()
    if pin:
        assert image["tag"] == _versions()[pin]
    assert image["pullPolicy"] == "Never", "the node has no registry to pull from"
