#!/usr/bin/env bash
# Builds Whereabouts (the cluster-wide IPAM most used with Multus) from the Go
# module proxy into a cache OUTSIDE the repository, keyed by version, the same
# way ops/tools/build-test-binaries.sh builds the control plane. Used only by
# the peers benchmark (make bench-peers), which runs it beside nicpool.
#
# Why a throwaway module and not `go install ...@v0.9.2`: Whereabouts' go.mod
# carries a replace directive, and `go install pkg@version` refuses modules
# that have one. Requiring it from a module of our own ignores the directive
# (replaces only apply in the main module) and builds the same cmd package.
#
# Besides the binary, the script copies the module's CRDs (doc/crds: the
# IPPool and OverlappingRangeIPReservation definitions the plugin writes) next
# to it. Nothing from Whereabouts lands in this repository.
#
# Prints the directory holding `whereabouts` and `crds/`.
# --cached-only: never build; exit 1 (printing nothing) when not built yet.
set -euo pipefail

CACHED_ONLY=false
[[ "${1:-}" == "--cached-only" ]] && CACHED_ONLY=true

WHEREABOUTS_VERSION=${NICPOOL_WHEREABOUTS_VERSION:-v0.9.2}
MODULE=github.com/k8snetworkplumbingwg/whereabouts
CACHE=${NICPOOL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nicpool}
OUT="$CACHE/bin/whereabouts-$WHEREABOUTS_VERSION"

log() { echo "build-whereabouts: $*" >&2; }

if [[ -x "$OUT/whereabouts" && -d "$OUT/crds" ]]; then
  echo "$OUT"
  exit 0
fi
if $CACHED_ONLY; then
  log "not built yet: run bash ops/tools/build-whereabouts.sh"
  exit 1
fi
export PATH="$PATH:/usr/local/go/bin"
command -v go >/dev/null || { log "go is not on PATH"; exit 1; }

mkdir -p "$OUT"
work=$(mktemp -d "$CACHE/whereabouts-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
log "building Whereabouts $WHEREABOUTS_VERSION (once per machine, 2-3 min)"
go mod init nicpool.local/whereaboutsbuild >/dev/null 2>&1
go get "$MODULE/cmd@$WHEREABOUTS_VERSION" >/dev/null 2>&1
go build -trimpath -o "$OUT/whereabouts.tmp" "$MODULE/cmd"
dir=$(go list -m -f '{{.Dir}}' "$MODULE")
rm -rf "$OUT/crds.tmp" && mkdir -p "$OUT/crds.tmp"
cp "$dir"/doc/crds/whereabouts.cni.cncf.io_*.yaml "$OUT/crds.tmp/"
chmod u+w "$OUT"/crds.tmp/*.yaml
rm -rf "$OUT/crds" && mv "$OUT/crds.tmp" "$OUT/crds"
mv "$OUT/whereabouts.tmp" "$OUT/whereabouts"
echo "$OUT"
