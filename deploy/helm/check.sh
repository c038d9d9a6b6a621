#!/usr/bin/env bash
# make chart-check: every check of the chart and of the service image, each step timed.
#
#   check.sh [STEP...]   run the named steps in order (default: all of them)
#
#   sync        the chart's copies of the collector config, rules, Alertmanager files and
#               dashboards are identical to their sources (sync.py --check)
#   lint        helm lint --strict with each scenario of pulse/ci/
#   kubeconform helm template of each scenario for the oldest and newest supported Kubernetes,
#               validated by kubeconform -strict against offline schemas (kubernetes-validate)
#   configs     the chart's own Prometheus, Jaeger and NATS configs, as rendered, accepted by the
#               pinned binaries (promtool check config, jaeger validate, nats-server -t); Loki is
#               AGPL and never built here (tests/chart holds its config to its pod), VictoriaLogs
#               takes flags
#   hadolint    hadolint of service/Dockerfile
#   checkov     checkov of the rendered manifests and of the Dockerfile (skips: checkov.yaml)
#
# Every step fails the script when its tool fails. PULSE_CHART and PULSE_DOCKERFILE point the
# checks at another chart or Dockerfile (tests/build breaks copies to watch each step fail).
# PYTHON must have PyYAML (make passes the project's venv).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
CHART="${PULSE_CHART:-$HERE/pulse}"
DOCKERFILE="${PULSE_DOCKERFILE:-$REPO/service/Dockerfile}"
PYTHON="${PYTHON:-python3}"
STEPS=(sync lint kubeconform configs hadolint checkov)
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
scenarios=("$CHART"/ci/*-values.yaml)

# Runs a command quietly; on failure prints its output and what failed, and exits.
quiet() {  # what command...
  local what="$1" output
  shift
  if ! output="$("$@" 2>&1)"; then
    printf '%s\n' "$output" >&2
    echo "FAILED: $what" >&2
    exit 1
  fi
}

need() {  # VAR command...: sets VAR to the command's output (a tool's path) once
  local value
  [[ -n "${!1:-}" ]] && return 0
  value="$("${@:2}")"
  printf -v "$1" '%s' "$value"
}

render() {  # renders every scenario for every Kubernetes version into $OUT/<version>/, once
  [[ -f "$OUT/.rendered" ]] && return 0
  local version values
  need HELM deploy/local/build.sh path helm
  for version in "${KUBE_VERSIONS[@]}"; do
    mkdir -p "$OUT/$version"
    for values in "${scenarios[@]}"; do
      "$HELM" template pulse "$CHART" --namespace pulse --kube-version "$version" -f "$values" \
        > "$OUT/$version/$(basename "$values" -values.yaml).yaml"
    done
  done
  touch "$OUT/.rendered"
}

check_sync() {
  step "packaged files match their sources"
  "$PYTHON" "$HERE/sync.py" --check
}

check_lint() {
  step "helm lint --strict, ${#scenarios[@]} scenarios"
  local values
  need HELM deploy/local/build.sh path helm
  for values in "${scenarios[@]}"; do
    quiet "helm lint with $values" \
      "$HELM" lint --strict --quiet "$CHART" -f "$values" --kube-version "${KUBE_VERSIONS[0]}"
  done
  echo "helm lint: ${#scenarios[@]} scenarios clean"
}

check_kubeconform() {
  step "helm template + kubeconform, Kubernetes ${KUBE_VERSIONS[*]} (skipping $NO_SCHEMA_KINDS: no offline schema)"
  render
  need KUBECONFORM deploy/local/build.sh path kubeconform
  need SCHEMAS "$HERE/tools.sh" path kubernetes-schemas
  local version
  for version in "${KUBE_VERSIONS[@]}"; do
    echo "Kubernetes $version:"
    "$KUBECONFORM" -strict -summary -kubernetes-version "$version" -skip "$NO_SCHEMA_KINDS" \
      -schema-location "$SCHEMAS/{{ .NormalizedKubernetesVersion }}-local{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json" \
      "$OUT/$version"
  done
}

check_configs() {
  step "rendered backend configs: promtool, jaeger validate, nats-server -t"
  render
  need PROMTOOL deploy/local/build.sh path promtool
  need JAEGER deploy/local/build.sh path jaeger
  need NATS deploy/local/build.sh path nats-server
  mkdir -p "$OUT/configs"
  # The defaults bundle Prometheus and Jaeger; the scaled scenario bundles NATS.
  "$PYTHON" - "$OUT/${KUBE_VERSIONS[-1]}" "$OUT/configs" <<'PY'
import sys
from pathlib import Path

import yaml

wanted = {
    ("defaults", "pulse-prometheus"): "prometheus.yml",
    ("defaults", "pulse-jaeger"): "config.yaml",
    ("scaled", "pulse-nats"): "nats.conf",
}
rendered, out = Path(sys.argv[1]), Path(sys.argv[2])
for scenario in sorted({scenario for scenario, _ in wanted}):
    for doc in yaml.safe_load_all((rendered / f"{scenario}.yaml").read_text()):
        name = (scenario, doc["metadata"]["name"]) if doc else None
        if doc and doc["kind"] == "ConfigMap" and name in wanted:
            key = wanted.pop(name)
            (out / key).write_text(doc["data"][key])
if wanted:
    sys.exit(f"rendered chart lacks ConfigMaps {sorted(wanted)}")
PY
  "$PROMTOOL" check config --syntax-only "$OUT/configs/prometheus.yml"
  # jaeger prints its version banner on stderr: shown only when validation fails.
  quiet "jaeger validate of the chart's Jaeger config" \
    "$JAEGER" validate --config "$OUT/configs/config.yaml"
  echo "jaeger: config valid"
  quiet "nats-server -t of the chart's NATS config" "$NATS" -t --config "$OUT/configs/nats.conf"
  echo "nats-server: config valid"
}

check_hadolint() {
  step "hadolint $DOCKERFILE"
  need HADOLINT "$HERE/tools.sh" path hadolint
  "$HADOLINT" "$DOCKERFILE"
  echo "hadolint: clean"
}

check_checkov() {
  step "checkov: rendered manifests and $DOCKERFILE"
  render
  need CHECKOV "$HERE/tools.sh" path checkov
  "$CHECKOV" --config-file "$HERE/checkov.yaml" --quiet --compact \
    -d "$OUT/${KUBE_VERSIONS[-1]}" --framework kubernetes
  "$CHECKOV" --config-file "$HERE/checkov.yaml" --quiet --compact \
    -f "$DOCKERFILE" --framework dockerfile
}

main() {
  local steps=("$@") name
  [[ ${#steps[@]} -eq 0 ]] && steps=("${STEPS[@]}")
  for name in "${steps[@]}"; do
    [[ " ${STEPS[*]} " == *" $name "* ]] || {
      echo "unknown step '$name'; steps: ${STEPS[*]}" >&2; exit 2; }
  done
  for name in "${steps[@]}"; do "check_$name"; done
  step "chart checks passed: ${steps[*]}"
}

main "$@"
