#!/usr/bin/env bash
# Builds the real control-plane binaries the controller, e2e and node tiers run
# against (kube-apiserver, kube-controller-manager, kube-scheduler, kubelet,
# etcd), envtest-style, from
# the Go module proxy into a cache OUTSIDE the repository, keyed by version.
#
# Why a throwaway module: k8s.io/kubernetes maps its staging modules
# (k8s.io/api, k8s.io/client-go, ...) to ./staging with replace directives,
# which Go ignores in a dependency. We read those directives from the
# downloaded go.mod and point each staging module at its matching v0.X.Y
# release instead. etcd's server module has the same shape.
#
# Prints the directory holding the binaries (usable as KUBEBUILDER_ASSETS).
# Honours KUBEBUILDER_ASSETS: when it already holds kube-apiserver, nothing is
# built and that directory is printed.
#
# --cached-only: never build; exit 1 (printing nothing) when the binaries are
# not there yet. Test fixtures use it so a laptop run skips instead of
# starting a 10-15 minute build behind the user's back.
set -euo pipefail

CACHED_ONLY=false
[[ "${1:-}" == "--cached-only" ]] && CACHED_ONLY=true

K8S_VERSION=${NICPOOL_K8S_VERSION:-v1.34.4}
ETCD_VERSION=${NICPOOL_ETCD_VERSION:-v3.6.5}
CACHE=${NICPOOL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nicpool}
OUT="$CACHE/bin/k8s-$K8S_VERSION-etcd-$ETCD_VERSION"

log() { echo "build-test-binaries: $*" >&2; }

if [[ -n "${KUBEBUILDER_ASSETS:-}" && -x "${KUBEBUILDER_ASSETS}/kube-apiserver" ]]; then
  echo "$KUBEBUILDER_ASSETS"
  exit 0
fi
KUBE_BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubelet)
all_built() {
  local b
  for b in "${KUBE_BINARIES[@]}" etcd; do [[ -x "$OUT/$b" ]] || return 1; done
}
if all_built; then
  echo "$OUT"
  exit 0
fi
if $CACHED_ONLY; then
  log "not built yet: run bash ops/tools/build-test-binaries.sh (or make test-binaries)"
  exit 1
fi
command -v go >/dev/null || { log "go is not on PATH"; exit 1; }

mkdir -p "$OUT"
work=$(mktemp -d "$CACHE/build.XXXXXX")
trap 'rm -rf "$work"' EXIT

build_etcd() {
  [[ -x "$OUT/etcd" ]] && return
  log "building etcd $ETCD_VERSION (once per machine)"
  mkdir -p "$work/etcd" && cd "$work/etcd"
  go mod init nicpool.local/etcdbuild >/dev/null 2>&1
  go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >/dev/null 2>&1
  go build -trimpath -o "$OUT/etcd.tmp" go.etcd.io/etcd/server/v3
  mv "$OUT/etcd.tmp" "$OUT/etcd"
}

build_kube() {
  all_built && return
  log "building ${KUBE_BINARIES[*]} $K8S_VERSION (once per machine, ~15 min on 2 cores)"
  mkdir -p "$work/kube" && cd "$work/kube"
  local gomod staging_minor
  gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  staging_minor="v0.${K8S_VERSION#v1.}"
  {
    echo "module nicpool.local/kubebuild"
    echo
    echo "go 1.24"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    echo "replace ("
    # Lines look like: k8s.io/api => ./staging/src/k8s.io/api
    sed -n 's#^[[:space:]]*\(k8s\.io/[a-z0-9-]*\) => \./staging/.*#\t\1 => \1 '"$staging_minor"'#p' "$gomod"
    echo ")"
  } > go.mod
  cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
GO
  go mod tidy >/dev/null
  # Without the version stamp every component reports v0.0.0-master (the
  # node's kubeletVersion too), which version-skew checks refuse.
  local major=${K8S_VERSION#v} minor
  minor=${major#*.}; minor=${minor%%.*}; major=${major%%.*}
  local pkg=k8s.io/component-base/version
  local ldflags="-X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
  local b
  for b in "${KUBE_BINARIES[@]}"; do
    [[ -x "$OUT/$b" ]] && continue
    go build -trimpath -ldflags "$ldflags" -o "$OUT/$b.tmp" "k8s.io/kubernetes/cmd/$b"
    mv "$OUT/$b.tmp" "$OUT/$b"
  done
}

build_etcd
build_kube
echo "$OUT"
