#!/usr/bin/env bash
# Builds the real Multus thin plugin (the `multus` binary kubelet execs) from
# the Go module proxy into a cache OUTSIDE the repository, keyed by version,
# the same way ops/tools/build-test-binaries.sh builds the control plane.
#
# A throwaway module requires Multus and builds its cmd/multus package; nothing
# from Multus lands in this repository. Prints the path of the binary.
# --cached-only prints the path only if it is already built.
# The cni tier uses it when present (tests/cni/test_multus.py) and otherwise
# plays Multus with ops/lab/cni.py's MultusHarness.
set -euo pipefail

MULTUS_VERSION=${NICPOOL_MULTUS_VERSION:-v4.2.2}
MODULE=gopkg.in/k8snetworkplumbingwg/multus-cni.v4
CACHE=${NICPOOL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nicpool}
OUT="$CACHE/bin/multus-$MULTUS_VERSION"

log() { echo "build-multus: $*" >&2; }

if [[ -x "$OUT/multus" ]]; then
  echo "$OUT/multus"
  exit 0
fi
# --cached-only: never build (the node lab asks before it starts anything).
if [[ "${1:-}" == "--cached-only" ]]; then
  log "not built yet: run bash ops/tools/build-multus.sh"
  exit 1
fi
export PATH="$PATH:/usr/local/go/bin"
command -v go >/dev/null || { log "go is not on PATH"; exit 1; }

mkdir -p "$OUT"
work=$(mktemp -d "$CACHE/multus-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
log "building Multus thin plugin $MULTUS_VERSION (once per machine)"
go mod init nicpool.local/multusbuild >/dev/null 2>&1
go get "$MODULE/cmd/multus@$MULTUS_VERSION" >/dev/null 2>&1
go build -trimpath -o "$OUT/multus.tmp" "$MODULE/cmd/multus"
mv "$OUT/multus.tmp" "$OUT/multus"
echo "$OUT/multus"
