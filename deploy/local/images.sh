#!/usr/bin/env bash
# Container images of the chart, built here without a registry or a Docker engine (buildah from
# Debian's packages), and imported into the local node's containerd.
#
#   images.sh build [NAME...]   build what is missing: base pulse otelcol jaeger prometheus
#                               alertmanager victorialogs nats postgresql pause (default: all)
#   images.sh import SOCKET     import every image (built before) into the containerd at SOCKET
#   images.sh ref NAME          print the image reference of NAME
#
# base: the Dockerfile's `FROM` (python:3.11-slim-bookworm) made locally from Debian's packages by
# debootstrap, under that same name, so `buildah bud` of service/Dockerfile runs unchanged.
# pulse: service/Dockerfile itself. The backends and NATS: the binaries deploy/local/build.sh
# builds, each alone in an image from scratch, as their upstream images ship them. postgresql:
# Debian's server package on a minimal debootstrap of the base's suite, with an entrypoint that
# keeps the official image's contract (images/postgresql-entrypoint.sh). pause: the sandbox image.
# Archives land in ${PULSE_IMAGES_DIR:-~/.cache/pulse/images}; a rebuild of Pulse follows the
# files the Dockerfile copies (a label carries their digest).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
# shellcheck source=versions.env
source "$HERE/versions.env"
CACHE="${PULSE_IMAGES_DIR:-$HOME/.cache/pulse/images}"
DOCKERFILE="$REPO/service/Dockerfile"
ALL=(base pulse otelcol jaeger prometheus alertmanager victorialogs nats postgresql pause)
APP_VERSION="$(sed -nE 's/^version = "([^"]+)"/\1/p' "$REPO/pyproject.toml")"
# The references deploy/helm/pulse/ci/node-values.yaml names: Pulse as the chart's default
# (pulse:<appVersion>), the others local/<name>:<version of what is inside>.
declare -A REFS=(
  [pulse]="pulse:$APP_VERSION"
  [otelcol]="local/otelcol:$OTELCOL_VERSION"
  [jaeger]="local/jaeger:$JAEGER_MODULE_VERSION"
  [prometheus]="local/prometheus:$PROMETHEUS_VERSION"
  [alertmanager]="local/alertmanager:$ALERTMANAGER_VERSION"
  [victorialogs]="local/victorialogs:$VICTORIALOGS_VERSION"
  [nats]="local/nats:$NATS_SERVER_VERSION"
  [postgresql]="local/postgresql:$POSTGRESQL_MAJOR"
  [pause]="local/pause:$APP_VERSION"
)

log() { echo "images: $*" >&2; }

base_ref() {  # the first FROM of the Dockerfile, e.g. python:3.11-slim-bookworm
  sed -nE 's/^FROM ([^ ]+).*/\1/p' "$DOCKERFILE" | head -1
}

base_suite() {  # the Debian suite of the base, e.g. bookworm: every image here is of one release
  local tag
  tag="$(base_ref)"
  echo "${tag##*-}"
}

exists() { buildah inspect --type image "$1" >/dev/null 2>&1; }

label() {  # the digest of what an image was built from, empty when it is missing
  exists "$1" || return 0
  buildah inspect --type image --format '{{index .OCIv1.Config.Labels "pulse.source-digest"}}' "$1"
}

debian_mirror() {  # the machine's own Debian mirror, from its apt sources
  local uri
  uri="$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null \
    | sed -nE 's/^URIs: *([^ ]+).*/\1/p; s/^deb +(\[[^]]*\] +)?([^ ]+) +[a-z]+ .*/\2/p' \
    | grep -v -- '-security' | head -1)"
  [[ -n "$uri" ]] || { echo "no Debian mirror in /etc/apt/sources.list*" >&2; return 1; }
  echo "$uri"
}

build_base() {
  local ref tag python suite root ctr mnt
  ref="$(base_ref)"
  exists "$ref" && return 0
  tag="${ref#*:}"             # 3.11-slim-bookworm
  python="${tag%%-*}"         # 3.11
  suite="$(base_suite)"       # bookworm
  root="$(mktemp -d)"
  log "base $ref: debootstrap --variant=minbase $suite with Debian's python3 (about 2 minutes)…"
  debootstrap --variant=minbase --include=python3,python3-venv,python-is-python3 \
    "$suite" "$root" "$(debian_mirror)" > "$root.log" 2>&1 \
    || { tail -20 "$root.log" >&2; return 1; }
  chroot "$root" python --version 2>&1 | grep -q "^Python $python\." \
    || { echo "$suite's python3 is not $python, as $ref says" >&2; return 1; }
  # What a slim image leaves out; the interpreter's bytecode stays compiled (read-only roots
  # cannot cache it, and compiling at every start costs each pod memory).
  rm -rf "$root"/usr/share/{doc,man,info,locale}/* "$root"/var/lib/apt/lists/* \
    "$root"/var/cache/apt/* "$root"/var/log/* "$root"/var/cache/debconf/*-old
  chroot "$root" python -m compileall -q -j 0 "/usr/lib/python$python" >/dev/null
  ctr="$(buildah from scratch)"
  mnt="$(buildah mount "$ctr")"
  cp -a "$root"/. "$mnt"/
  buildah umount "$ctr" >/dev/null
  buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env LANG=C.UTF-8 --cmd python3 "$ctr"
  buildah commit --quiet "$ctr" "$ref" >/dev/null
  buildah rm "$ctr" >/dev/null
  rm -rf "$root" "$root.log"
  log "base $ref built"
}

source_digest() {  # the files service/Dockerfile copies, as git sees them (committed or not)
  (cd "$REPO" && git ls-files -co --exclude-standard pyproject.toml README.md service \
    | sort | xargs sha256sum | sha256sum | cut -c1-16)
}

build_pulse() {
  local ref="${REFS[pulse]}" digest
  digest="$(source_digest)"
  [[ "$(label "$ref")" == "$digest" ]] && return 0
  build_base
  log "pulse $ref: buildah bud -f service/Dockerfile…"
  # RUN steps reach the package index with the machine's network, CA bundle and pip settings,
  # mounted for the build only: nothing of the machine lands in the image.
  local mounts=(-v /etc/ssl/certs:/etc/ssl/certs:ro)
  [[ -f /etc/pip.conf ]] && mounts+=(-v /etc/pip.conf:/etc/pip.conf:ro)
  local containers
  containers="$(buildah containers -q)"
  buildah bud --quiet --format docker --pull=never --network host "${mounts[@]}" \
    --label "pulse.source-digest=$digest" -f "$DOCKERFILE" -t "$ref" "$REPO" >&2
  # What the build leaves: the working container of the bare `FROM ... AS base` stage, and
  # untagged images (the builder stage, the Pulse image this one replaces).
  comm -13 <(sort <<< "$containers") <(buildah containers -q | sort) | xargs -r buildah rm >/dev/null
  buildah rmi --prune >/dev/null
  log "pulse $ref built"
}

binary() { "$HERE/build.sh" path "$1" | tail -1; }

build_scratch() {  # name binary uid: one static binary from scratch, its entrypoint
  local name="$1" bin="$2" uid="$3"
  local ref="${REFS[$name]}" ctr digest program
  program="$(basename "$bin")"
  digest="$(sha256sum "$bin" | cut -c1-16)"
  [[ "$(label "$ref")" == "$digest" ]] && return 0
  log "$name $ref from $bin"
  ctr="$(buildah from scratch)"
  buildah copy --quiet "$ctr" "$bin" "/bin/$program" >/dev/null
  buildah config --entrypoint "[\"/bin/$program\"]" --cmd '[]' \
    --user "$uid:$uid" --workingdir / --label "pulse.source-digest=$digest" "$ctr"
  buildah commit --quiet "$ctr" "$ref" >/dev/null
  buildah rm "$ctr" >/dev/null
  buildah rmi --prune >/dev/null
}

# What the server does not use: the JIT provider and its LLVM (the entrypoint sets jit=off), the
# locale sources (initdb runs with the C locale), perl (only Debian's cluster wrappers need it).
POSTGRESQL_UNUSED=(libllvm14 libz3-4 locales perl perl-modules-5.36 libperl5.36)
POSTGRESQL_UID=10001  # the chart's user of every component but Prometheus and Alertmanager

build_postgresql() {
  local ref="${REFS[postgresql]}" entrypoint="$HERE/images/postgresql-entrypoint.sh"
  local digest suite root ctr mnt bin="/usr/lib/postgresql/$POSTGRESQL_MAJOR/bin"
  # The recipe itself is part of what the image is built from: a change to it rebuilds.
  digest="$( { declare -f build_postgresql; echo "$POSTGRESQL_MAJOR ${POSTGRESQL_UNUSED[*]}"
    cat "$entrypoint"; } | sha256sum | cut -c1-16)"
  [[ "$(label "$ref")" == "$digest" ]] && return 0
  suite="$(base_suite)"
  root="$(mktemp -d)"
  log "postgresql $ref: debootstrap --variant=minbase $suite with postgresql-$POSTGRESQL_MAJOR (about a minute)…"
  debootstrap --variant=minbase --include="postgresql-$POSTGRESQL_MAJOR" \
    "$suite" "$root" "$(debian_mirror)" > "$root.log" 2>&1 \
    || { tail -20 "$root.log" >&2; return 1; }
  [[ -x "$root$bin/postgres" ]] || { echo "no $bin/postgres in the debootstrap" >&2; return 1; }
  chroot "$root" dpkg --purge --force-depends "${POSTGRESQL_UNUSED[@]}" >> "$root.log" 2>&1 \
    || { tail -20 "$root.log" >&2; return 1; }
  # The package's user takes the chart's uid: initdb and postgres refuse a user without a name.
  chroot "$root" groupmod --gid "$POSTGRESQL_UID" postgres
  chroot "$root" usermod --uid "$POSTGRESQL_UID" --gid "$POSTGRESQL_UID" postgres
  # The cluster Debian's postinst created, and the snakeoil key it generated: each pod makes its
  # own cluster in PGDATA, and no private key ships in an image.
  rm -rf "$root"/etc/postgresql/* "$root"/var/lib/postgresql/* "$root"/etc/ssl/private/* \
    "$root"/etc/ssl/certs/ssl-cert-snakeoil.pem "$root"/usr/share/{doc,man,info,locale}/* \
    "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/log/* \
    "$root"/var/cache/debconf/*-old "$root/usr/lib/postgresql/$POSTGRESQL_MAJOR/lib/bitcode" \
    "$root/usr/lib/postgresql/$POSTGRESQL_MAJOR/lib"/llvmjit*
  install -m 0755 "$entrypoint" "$root/usr/local/bin/postgresql-entrypoint"
  ctr="$(buildah from scratch)"
  mnt="$(buildah mount "$ctr")"
  cp -a "$root"/. "$mnt"/
  buildah umount "$ctr" >/dev/null
  # SIGINT is PostgreSQL's fast shutdown, as in the official image: sessions are ended rather
  # than waited for, and the server checkpoints and exits within the pod's grace period.
  buildah config --env "PATH=$bin:/usr/local/bin:/usr/bin:/bin" \
    --entrypoint '["/usr/local/bin/postgresql-entrypoint"]' --cmd '[]' --stop-signal SIGINT \
    --user "$POSTGRESQL_UID:$POSTGRESQL_UID" --workingdir / --label "pulse.source-digest=$digest" "$ctr"
  buildah commit --quiet "$ctr" "$ref" >/dev/null
  buildah rm "$ctr" >/dev/null
  buildah rmi --prune >/dev/null
  rm -rf "$root" "$root.log"
  log "postgresql $ref built"
}

build_pause() {
  local dir
  exists "${REFS[pause]}" && return 0
  dir="$(mktemp -d)"
  (cd "$HERE/tools/pause" && CGO_ENABLED=0 GOTOOLCHAIN="${GOTOOLCHAIN:-local}" \
    go build -trimpath -buildvcs=false -ldflags="-s -w" -o "$dir/pause" .)
  build_scratch pause "$dir/pause" 65535
  rm -rf "$dir"
}

build_one() {
  case "$1" in
    base) build_base ;;
    pulse) build_pulse ;;
    otelcol) build_scratch otelcol "$(binary otelcol)" 10001 ;;
    jaeger) build_scratch jaeger "$(binary jaeger)" 10001 ;;
    prometheus) build_scratch prometheus "$(binary prometheus)" 65534 ;;
    alertmanager) build_scratch alertmanager "$(binary alertmanager)" 65534 ;;
    victorialogs) build_scratch victorialogs "$(binary victorialogs)" 10001 ;;
    nats) build_scratch nats "$(binary nats-server)" 10001 ;;
    postgresql) build_postgresql ;;
    pause) build_pause ;;
    *) echo "unknown image '$1'; known: ${ALL[*]}" >&2; return 2 ;;
  esac
}

import_all() {  # socket: the images built so far; a missing one is an error
  local socket="$1" name ref archive
  mkdir -p "$CACHE"
  for name in "${!REFS[@]}"; do
    ref="${REFS[$name]}"
    exists "$ref" || { echo "image $ref is not built: run 'make images'" >&2; return 1; }
    archive="$CACHE/$name.tar"
    buildah push --quiet "$ref" "docker-archive:$archive:$ref" >/dev/null
    ctr --address "$socket" -n k8s.io images import --no-unpack=false "$archive" >/dev/null
    rm -f "$archive"
    log "imported $ref"
  done
}

main() {
  local command="${1:-build}"; shift $(( $# > 0 ))
  case "$command" in
    build)
      local names=("$@")
      [[ ${#names[@]} -eq 0 ]] && names=("${ALL[@]}")
      for name in "${names[@]}"; do build_one "$name"; done ;;
    import) import_all "$1" ;;
    ref) echo "${REFS[$1]}" ;;
    *) sed -n '2,16p' "${BASH_SOURCE[0]}" >&2; return 2 ;;
  esac
}

main "$@"
