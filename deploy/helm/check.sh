#!/usr/bin/env bash
# make chart-check: every check of the chart and of the service image, each step timed.
#
#   1. the chart's copies of the collector config, rules, Alertmanager files and dashboards
#      are identical to their sources (sync.py --check)
#   2. helm lint --strict with each scenario of pulse/ci/
#   3. helm template of each scenario for the oldest and newest supported Kubernetes, validated
#      by kubeconform -strict against offline schemas (the kubernetes-validate wheel)
#   4. the chart's own Prometheus and Jaeger configs, as rendered, accepted by the pinned
#      binaries (promtool check config, jaeger validate); Loki is AGPL and never built here
#   5. hadolint of service/Dockerfile
#   6. checkov of the rendered manifests and of the Dockerfile (skips: deploy/helm/checkov.yaml)
#
# PYTHON must have PyYAML (make passes the project's venv).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
CHART="$HERE/pulse"
PYTHON="${PYTHON:-python3}"
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest with schemas
# in kubernetes-validate.
KUBE_VERSIONS=(1.29.0 1.37.0)
# Prometheus operator CRDs: kubernetes-validate ships no schema for them, so kubeconform skips them.
NO_SCHEMA_KINDS=PrometheusRule,ServiceMonitor

cd "$REPO"
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT
STARTED=$(date +%s)
step() { echo "== $* ($(( $(date +%s) - STARTED ))s)"; }

step "tools"
HELM="$(deploy/local/build.sh path helm)"
KUBECONFORM="$(deploy/local/build.sh path kubeconform)"
HADOLINT="$("$HERE/tools.sh" path hadolint)"
CHECKOV="$("$HERE/tools.sh" path checkov)"
SCHEMAS="$("$HERE/tools.sh" path kubernetes-schemas)"

step "packaged files match their sources"
"$PYTHON" "$HERE/sync.py" --check

scenarios=("$CHART"/ci/*-values.yaml)
step "helm lint --strict, ${#scenarios[@]} scenarios"
for values in "${scenarios[@]}"; do
  "$HELM" lint --strict --quiet "$CHART" -f "$values" --kube-version "${KUBE_VERSIONS[0]}" \
    | grep -v '^$' || true
  [[ ${PIPESTATUS[0]} -eq 0 ]] || { echo "helm lint failed with $values" >&2; exit 1; }
done

step "helm template + kubeconform, Kubernetes ${KUBE_VERSIONS[*]} (skipping $NO_SCHEMA_KINDS: no offline schema)"
for version in "${KUBE_VERSIONS[@]}"; do
  mkdir -p "$OUT/$version"
  for values in "${scenarios[@]}"; do
    name="$(basename "$values" -values.yaml)"
    "$HELM" template pulse "$CHART" --namespace pulse --kube-version "$version" -f "$values" \
      > "$OUT/$version/$name.yaml"
  done
  echo "Kubernetes $version:"
  "$KUBECONFORM" -strict -summary -kubernetes-version "$version" -skip "$NO_SCHEMA_KINDS" \
    -schema-location "$SCHEMAS/{{ .NormalizedKubernetesVersion }}-local{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json" \
    "$OUT/$version"
done

step "rendered backend configs: promtool, jaeger validate"
mkdir -p "$OUT/configs"
"$PYTHON" - "$OUT/${KUBE_VERSIONS[-1]}/defaults.yaml" "$OUT/configs" <<'PY'
import sys
from pathlib import Path

import yaml

wanted = {"pulse-prometheus": "prometheus.yml", "pulse-jaeger": "config.yaml"}
out = Path(sys.argv[2])
for doc in yaml.safe_load_all(Path(sys.argv[1]).read_text()):
    if doc and doc["kind"] == "ConfigMap" and doc["metadata"]["name"] in wanted:
        key = wanted.pop(doc["metadata"]["name"])
        (out / key).write_text(doc["data"][key])
if wanted:
    sys.exit(f"rendered chart lacks ConfigMaps {sorted(wanted)}")
PY
"$(deploy/local/build.sh path promtool)" check config --syntax-only "$OUT/configs/prometheus.yml"
"$(deploy/local/build.sh path jaeger)" validate --config "$OUT/configs/config.yaml" 2>/dev/null \
  && echo "jaeger: config valid"

step "hadolint service/Dockerfile"
"$HADOLINT" service/Dockerfile && echo "hadolint: clean"

step "checkov: rendered manifests and service/Dockerfile"
"$CHECKOV" --config-file "$HERE/checkov.yaml" --quiet --compact \
  -d "$OUT/${KUBE_VERSIONS[-1]}" --framework kubernetes
"$CHECKOV" --config-file "$HERE/checkov.yaml" --quiet --compact \
  -f service/Dockerfile --framework dockerfile

step "chart checks passed"
