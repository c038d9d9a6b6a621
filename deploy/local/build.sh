#!/usr/bin/env bash
# Builds the pinned upstream binaries of the local stack from their Go modules, once.
#
#   build.sh [all|node|engines|NAME...]   build what is missing: all = the local stack and the
#                            chart checks (promtool prometheus alertmanager amtool helm kubeconform
#                            otelcol victorialogs jaeger); node = the local node (etcd kube-apiserver
#                            kube-controller-manager kube-scheduler kubelet kube-proxy coredns);
#                            engines = the shared engines of several replicas built here (nats-server)
#   build.sh path NAME       print the binary's path, building it first when missing
#   build.sh crds            print the directory of the Prometheus operator CRDs the chart uses
#   build.sh path dashboard-check   the strict dashboard checker, built on first use
#
# Binaries land in ${PULSE_TOOLS_DIR:-~/.cache/pulse/tools}/<name>-<version>/ and are reused.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
# shellcheck source=versions.env
source "$HERE/versions.env"
TOOLS="${PULSE_TOOLS_DIR:-$HOME/.cache/pulse/tools}"
export GOFLAGS="-buildvcs=false -trimpath" GOTOOLCHAIN="${GOTOOLCHAIN:-local}" CGO_ENABLED=0
ALL=(promtool prometheus alertmanager amtool helm kubeconform otelcol victorialogs jaeger)
NODE=(etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy coredns)
ENGINES=(nats-server)

version_of() {
  case "$1" in
    promtool) echo "$PROMETHEUS_VERSION" ;;
    # Its own directory: a binary cached from before the UI was embedded is not reused.
    prometheus) echo "$PROMETHEUS_VERSION-ui" ;;
    alertmanager|amtool) echo "$ALERTMANAGER_VERSION" ;;
    helm) echo "$HELM_VERSION" ;;
    kubeconform) echo "$KUBECONFORM_VERSION" ;;
    otelcol) echo "$OTELCOL_VERSION" ;;
    victorialogs) echo "$VICTORIALOGS_VERSION" ;;
    jaeger) echo "$JAEGER_MODULE_VERSION" ;;
    nats-server) echo "$NATS_SERVER_VERSION" ;;
    etcd) echo "$ETCD_VERSION" ;;
    kube-apiserver|kube-controller-manager|kube-scheduler|kubelet|kube-proxy) echo "$KUBERNETES_VERSION" ;;
    coredns) echo "$COREDNS_VERSION" ;;
    dashboard-check) echo "$GRAFANA_FOUNDATION_SDK_VERSION" ;;
    *) echo "unknown tool '$1'; known: ${ALL[*]} ${NODE[*]} ${ENGINES[*]} dashboard-check" >&2; return 2 ;;
  esac
}

binary_of() { echo "$TOOLS/$1-$(version_of "$1")/$1"; }

go_install() {  # dir package@version [go flags...]
  local dir="$1" pkg="$2"; shift 2
  GOBIN="$dir" go install "$@" "$pkg"
}

build_otelcol() {
  local dir="$1" work
  work="$(mktemp -d)"
  GOBIN="$work" go install "go.opentelemetry.io/collector/cmd/builder@v$OTELCOL_VERSION"
  sed -e "s|@OTELCOL_VERSION@|$OTELCOL_VERSION|g" -e "s|@CONFMAP_VERSION@|$OTELCOL_CONFMAP_VERSION|g" \
    -e "s|output_path: .*|output_path: $work/dist|" \
    "$REPO/deploy/otel-collector/builder-config.yaml" > "$work/builder-config.yaml"
  # The builder's own module step runs 'go mod tidy', which wants the test-only modules of every
  # component; resolving just what the build imports needs far fewer modules.
  "$work/builder" --config "$work/builder-config.yaml" --skip-get-modules --skip-compilation
  (
    cd "$work/dist"
    go mod init otelcol-pulse >/dev/null 2>&1
    modules=("go.opentelemetry.io/collector/otelcol@v$OTELCOL_VERSION")
    mapfile -t -O 1 modules < <(sed -nE 's/^ *- gomod: ([^ ]+) ([^ ]+).*/\1@\2/p' "$work/builder-config.yaml")
    # One module at a time first: when a burst of parallel lookups misses a component's module,
    # `go get` silently resolves its packages to the parent module and then fails with "module
    # go.opentelemetry.io/collector found, but does not contain package"; a download that misses
    # fails here, naming the module.
    for module in "${modules[@]}"; do
      echo "downloading $module" >&2
      go mod download "$module"
    done
    go get "${modules[@]}"
    go build -mod=mod -ldflags="-s -w" -o "$dir/otelcol" .
  )
  rm -rf "$work"
}

js_toolchain() {  # Node.js and pnpm, each from its per-platform package on the npm registry
  local arch
  command -v npm >/dev/null || {
    echo "the Prometheus UI build needs npm to install Node.js $NODE_VERSION and pnpm $PNPM_VERSION" >&2
    return 1; }
  case "$(uname -m)" in
    x86_64) arch=x64 ;;
    aarch64) arch=arm64 ;;
    *) echo "no Node.js package for machine $(uname -m)" >&2; return 1 ;;
  esac
  npm_tool "node-$NODE_VERSION" "node-linux-$arch@$NODE_VERSION" "node-linux-$arch/bin/node"
  npm_tool "pnpm-$PNPM_VERSION" "@pnpm/exe.linux-$arch@$PNPM_VERSION" "@pnpm/exe.linux-$arch/pnpm"
  PATH="$TOOLS/node-$NODE_VERSION/node_modules/node-linux-$arch/bin:$TOOLS/pnpm-$PNPM_VERSION/node_modules/@pnpm/exe.linux-$arch:$PATH"
}

npm_tool() {  # dir package@version binary: one package without dependencies, installed once
  local dir="$TOOLS/$1"
  [[ -x "$dir/node_modules/$3" ]] && return 0
  echo "installing $2 from the npm registry…"
  npm install --prefix "$dir" --no-save --no-package-lock --ignore-scripts --no-audit --no-fund \
    --loglevel=error "$2"
  [[ -x "$dir/node_modules/$3" ]] || { echo "$2 has no $3" >&2; return 1; }
}

lock_entries() {  # pnpm-lock.yaml: the name@version of every locked package
  sed -n '/^packages:$/,/^snapshots:$/s/^  '"'"'\{0,1\}\([^ '"'"'][^'"'"']*\)'"'"'\{0,1\}:$/\1/p' "$1" | sort
}

ui_overrides() {  # web/ui: replace the locked packages the registry does not serve (versions.env)
  local ui="$1" entry locked name served overrides="overrides:"
  [[ -n "$PROMETHEUS_UI_OVERRIDES" ]] || return 0
  grep -q '^overrides:' "$ui/pnpm-workspace.yaml" && {
    echo "web/ui/pnpm-workspace.yaml has overrides of its own; PROMETHEUS_UI_OVERRIDES cannot add to them" >&2
    return 1; }
  grep -q '^minimumReleaseAgeExclude:$' "$ui/pnpm-workspace.yaml" ||
    echo "minimumReleaseAgeExclude:" >> "$ui/pnpm-workspace.yaml"
  for entry in $PROMETHEUS_UI_OVERRIDES; do
    locked="${entry%%=*}" served="${entry#*=}" name="${locked%@*}"
    lock_entries "$ui/pnpm-lock.yaml" | grep -qxF "$locked" || {
      echo "PROMETHEUS_UI_OVERRIDES: web/ui/pnpm-lock.yaml locks no $locked" >&2; return 1; }
    echo "  the registry does not serve $locked: using $name@$served"
    overrides+=$'\n'"  '$name': $served"
    # The release-age policy checks the lock before the override applies, and an unserved version
    # has no age to check.
    sed -i "s|^minimumReleaseAgeExclude:\$|&\n  - '$locked'|" "$ui/pnpm-workspace.yaml"
  done
  echo "$overrides" >> "$ui/pnpm-workspace.yaml"
}

build_prometheus() (  # dir: Prometheus with its web UI embedded, as upstream's `make build` does
  # A subshell: its variables, working directory and exit trap stay here.
  dir="$1" work="$(mktemp -d)" start="$(date +%s)"
  trap 'rm -rf "$work"' EXIT
  src="$(go mod download -json "github.com/prometheus/prometheus@v$PROMETHEUS_VERSION" \
    | sed -nE 's/^\t"Dir": "(.*)",$/\1/p')"
  cp -r "$src" "$work/prometheus"
  chmod -R u+w "$work/prometheus"
  ui="$work/prometheus/web/ui"
  js_toolchain
  echo "prometheus: Node.js $(node --version), pnpm $(pnpm --version); installing web/ui's locked packages…"
  ui_overrides "$ui"
  # What the lock holds once the overrides apply; nothing else may be resolved anew.
  lock_entries "$ui/pnpm-lock.yaml" > "$work/expected"
  for entry in $PROMETHEUS_UI_OVERRIDES; do
    awk -v locked="${entry%%=*}" '$0 != locked' "$work/expected" > "$work/kept"
    { cat "$work/kept"; echo "${entry%@*}@${entry#*=}"; } | sort > "$work/expected"
  done
  (cd "$ui" && pnpm install --reporter=append-only \
    "$([[ -n "$PROMETHEUS_UI_OVERRIDES" ]] && echo --no-frozen-lockfile || echo --frozen-lockfile)")
  diff "$work/expected" <(lock_entries "$ui/pnpm-lock.yaml") || {
    echo "prometheus: pnpm resolved other packages than web/ui/pnpm-lock.yaml locks" >&2; return 1; }
  # The new UI only (upstream's BUILD_UI=mantine); the old one is served only with
  # --enable-feature=old-ui, which the stack does not set.
  echo "prometheus: building the web UI (web/ui/build_ui.sh --mantine-ui)…"
  (cd "$ui" && CI="" pnpm run build:mantine-ui)
  echo "prometheus: web UI built in $(( $(date +%s) - start ))s"
  echo "prometheus: compressing the assets and embedding them (builtinassets)…"
  cd "$work/prometheus"
  bash scripts/compress_assets.sh  # the module's files carry no executable bits
  GOWORK=off go build -tags builtinassets,remove_all_sd \
    -ldflags="-s -w -X github.com/prometheus/common/version.Version=$(cat VERSION)" \
    -o "$dir/prometheus" ./cmd/prometheus
)

build_wrapped() {  # dir name package [module]: wrapper modules carry upstream's replace lines
  local dir="$1" name="$2" pkg="$3" module="${4:-$2}"
  (cd "$HERE/tools/$module" && GONOSUMDB="${GONOSUMDB:-go.opentelemetry.io,github.com/open-telemetry}" \
    go build -mod=mod -ldflags="-s -w ${EXTRA_LDFLAGS:-}" -o "$dir/$name" "$pkg")
}

wrapper_pins() {  # module path version: the wrapper's go.mod must require the pinned version
  grep -q "^require $2 v$3\$" "$HERE/tools/$1/go.mod" || {
    echo "deploy/local/tools/$1/go.mod does not require $2 v$3 (versions.env)" >&2; return 1; }
}

build_one() {
  local name="$1" version dir start
  version="$(version_of "$name")"
  dir="$TOOLS/$name-$version"
  [[ -x "$dir/$name" ]] && return 0
  mkdir -p "$dir"
  start=$(date +%s)
  echo "building $name $version (the first build of a tool takes minutes; later runs reuse it)…" >&2
  case "$name" in
    promtool)
      go_install "$dir" "github.com/prometheus/prometheus/cmd/promtool@v$version" -tags remove_all_sd -ldflags="-s -w" ;;
    prometheus) build_prometheus "$dir" >&2 ;;
    alertmanager|amtool)
      go_install "$dir" "github.com/prometheus/alertmanager/cmd/$name@v$version" -ldflags="-s -w" ;;
    helm)
      go_install "$dir" "helm.sh/helm/v3/cmd/helm@v$version" \
        -ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=v$version" ;;
    kubeconform)
      go_install "$dir" "github.com/yannh/kubeconform/cmd/kubeconform@v$version" -ldflags="-s -w" ;;
    otelcol) build_otelcol "$dir" ;;
    victorialogs)
      # Upstream's Makefile stamps the version the same way (GO_BUILDINFO); /metrics reports it.
      go_install "$dir" "github.com/VictoriaMetrics/VictoriaLogs/app/victoria-logs@v$version" \
        -ldflags="-s -w -X github.com/VictoriaMetrics/VictoriaMetrics/lib/buildinfo.Version=victoria-logs-v$version"
      mv "$dir/victoria-logs" "$dir/victorialogs" ;;
    jaeger) build_wrapped "$dir" jaeger github.com/jaegertracing/jaeger/cmd/jaeger ;;
    nats-server)
      go_install "$dir" "github.com/nats-io/nats-server/v2@v$version" -ldflags="-s -w" ;;
    etcd)
      wrapper_pins etcd go.etcd.io/etcd/server/v3 "$version"
      build_wrapped "$dir" etcd pulse.local/tools/etcd ;;
    kube-apiserver|kube-controller-manager|kube-scheduler|kubelet|kube-proxy)
      wrapper_pins kubernetes k8s.io/kubernetes "$version"
      # The version the binaries report (and helm checks against kubeVersion) is stamped at link time.
      EXTRA_LDFLAGS="-X k8s.io/component-base/version.gitVersion=v$version \
        -X k8s.io/component-base/version.gitMajor=${version%%.*} \
        -X k8s.io/component-base/version.gitMinor=$(cut -d. -f2 <<< "$version") \
        -X k8s.io/component-base/version.gitTreeState=clean" \
        build_wrapped "$dir" "$name" "k8s.io/kubernetes/cmd/$name" kubernetes ;;
    coredns)
      go_install "$dir" "github.com/coredns/coredns@v$version" -ldflags="-s -w" ;;
    dashboard-check)
      wrapper_pins dashboard-check github.com/grafana/grafana-foundation-sdk/go "$version"
      build_wrapped "$dir" dashboard-check pulse.local/tools/dashboard-check ;;
  esac
  [[ -x "$dir/$name" ]] || { echo "build of $name produced no binary" >&2; return 1; }
  echo "built $name $version in $(( $(date +%s) - start ))s -> $dir/$name" >&2
}

operator_crds() {
  local dir="$TOOLS/prometheus-operator-crds-$PROMETHEUS_OPERATOR_VERSION" src kind
  if [[ ! -f "$dir/servicemonitors.yaml" ]]; then
    src="$(go mod download -json "github.com/prometheus-operator/prometheus-operator@v$PROMETHEUS_OPERATOR_VERSION" \
      | sed -nE 's/^\t"Dir": "(.*)",$/\1/p')"
    mkdir -p "$dir"
    for kind in prometheusrules servicemonitors; do
      cp "$src/example/prometheus-operator-crd/monitoring.coreos.com_$kind.yaml" "$dir/$kind.yaml"
    done
  fi
  echo "$dir"
}

main() {
  if [[ "${1:-all}" == crds ]]; then
    operator_crds
    return
  fi
  if [[ "${1:-all}" == path ]]; then
    build_one "$2"
    binary_of "$2"
    return
  fi
  local names=("$@")
  [[ ${#names[@]} -eq 0 || "${names[0]}" == all ]] && names=("${ALL[@]}")
  [[ "${names[0]}" == node ]] && names=("${NODE[@]}")
  [[ "${names[0]}" == engines ]] && names=("${ENGINES[@]}")
  for name in "${names[@]}"; do build_one "$name"; done
}

main "$@"
