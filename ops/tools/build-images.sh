#!/usr/bin/env bash
# Builds the three container images the real node runs, without Docker and
# without any registry, as OCI image archives that `ctr images import` takes:
#
#   pause     the sandbox image: Kubernetes' own pause.c (from the
#             k8s.io/kubernetes module the test binaries are built from),
#             compiled statically with gcc
#   busybox   a test image: Debian's busybox-static, one link per applet
#   nicpool   Debian (debootstrap, minbase) + python3 + a virtualenv holding
#             nicpool from this checkout and its dependencies (wheels built
#             on this machine with pip), the image ops/deploy runs
#
# Each archive holds one image with a single uncompressed layer (importing
# skips a gunzip of ~300 MB), named by the `io.containerd.image.name`
# annotation. Import them on any containerd node:
#
#   ctr -n k8s.io images import "$(bash ops/tools/build-images.sh --print nicpool)"
#
# Archives are cached in ~/.cache/nicpool/images (NICPOOL_CACHE), keyed by
# what went into them: the pause source version, the busybox package version,
# the Debian suite (for the base rootfs, itself cached), and a hash of
# nicpool's sources. Nothing lands in the repository.
#
# Usage: build-images.sh [--cached-only] [--print NAME]
#   prints the archive paths, one per line: pause, busybox, nicpool
#   --print NAME   only that archive's path
#   --cached-only  never build; exit 1 when an archive is missing
# Needs root (debootstrap chroots), gcc with static glibc, busybox-static,
# debootstrap, go (to locate pause.c in the module cache) and python3 -m pip.
set -euo pipefail

CACHED_ONLY=false
ONLY=""
while (($#)); do
  case "$1" in
    --cached-only) CACHED_ONLY=true ;;
    --print) ONLY=$2; shift ;;
    *) echo "build-images: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

REPO=$(cd "$(dirname "$0")/../.." && pwd)
K8S_VERSION=${NICPOOL_K8S_VERSION:-v1.34.4}
PAUSE_TAG=3.10
CACHE=${NICPOOL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nicpool}
OUT="$CACHE/images"
export PATH="$PATH:/usr/local/go/bin:/usr/sbin:/sbin"

log() { echo "build-images: $*" >&2; }

# --- names and cache keys -------------------------------------------------------

nicpool_version() {
  sed -n 's/^version = "\(.*\)"/\1/p' "$REPO/pyproject.toml" | head -1
}

source_hash() {
  # Every file that ends up in the image's nicpool install.
  (cd "$REPO" && find store reconciler cnibin -name '*.py' -print0 | sort -z \
    | xargs -0 sha256sum; sha256sum pyproject.toml) | sha256sum | cut -c1-12
}

busybox_version() {
  dpkg-query -W -f '${Version}' busybox-static 2>/dev/null | tr ':~+' '---'
}

debian_suite() {
  . /etc/os-release && echo "${VERSION_CODENAME:?no VERSION_CODENAME in /etc/os-release}"
}

PAUSE_ARCHIVE="$OUT/pause-$PAUSE_TAG-$K8S_VERSION.oci.tar"
BUSYBOX_ARCHIVE="$OUT/busybox-$(busybox_version).oci.tar"
NICPOOL_ARCHIVE="$OUT/nicpool-$(nicpool_version)-$(source_hash).oci.tar"
BASE_ROOTFS="$OUT/debian-$(debian_suite)-python3.rootfs.tar"

# Names under `localhost/`, the convention for images built locally (podman
# uses it): a reference whose first part is `localhost` is already fully
# qualified, so containerd's CRI finds the imported image under exactly the
# name a pod asks for, and no registry is ever named.
PAUSE_NAME="localhost/nicpool-pause:$PAUSE_TAG"
BUSYBOX_NAME="localhost/busybox:1.35"
NICPOOL_NAME="localhost/nicpool:$(nicpool_version)"

print_paths() {
  case "$ONLY" in
    "") printf '%s\n' "$PAUSE_ARCHIVE" "$BUSYBOX_ARCHIVE" "$NICPOOL_ARCHIVE" ;;
    pause) echo "$PAUSE_ARCHIVE" ;;
    busybox) echo "$BUSYBOX_ARCHIVE" ;;
    nicpool) echo "$NICPOOL_ARCHIVE" ;;
    *) log "--print: pause, busybox or nicpool"; exit 2 ;;
  esac
}

all_built() {
  [[ -s "$PAUSE_ARCHIVE" && -s "$BUSYBOX_ARCHIVE" && -s "$NICPOOL_ARCHIVE" ]]
}

if all_built; then
  print_paths
  exit 0
fi
if $CACHED_ONLY; then
  log "not built yet: run bash ops/tools/build-images.sh (as root)"
  exit 1
fi
[[ $(id -u) -eq 0 ]] || { log "must run as root (debootstrap chroots)"; exit 1; }
mkdir -p "$OUT"
work=$(mktemp -d "$OUT/build.XXXXXX")
cleanup() {
  # debootstrap and the venv step mount /proc (and more) in the rootfs.
  local m
  for m in $(awk -v w="$work" '$2 ~ "^"w {print $2}' /proc/self/mounts | sort -r); do
    umount -l "$m" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

# --- OCI archive ---------------------------------------------------------------

sha256() { sha256sum "$1" | cut -d' ' -f1; }

# oci_archive ROOTFS NAME CONFIG_JSON OUT: one-layer OCI image layout as a tar.
# CONFIG_JSON is the image config's "config" object (Env, Entrypoint, Cmd, ...).
oci_archive() {
  local rootfs=$1 name=$2 config=$3 out=$4
  local layout="$work/layout-${name//[\/:]/-}"
  mkdir -p "$layout/blobs/sha256"
  tar -C "$rootfs" --numeric-owner --sort=name --mtime=@0 -cf "$layout/layer.tar" .
  local layer_digest layer_size
  layer_digest=$(sha256 "$layout/layer.tar")
  layer_size=$(stat -c %s "$layout/layer.tar")
  mv "$layout/layer.tar" "$layout/blobs/sha256/$layer_digest"
  printf '{"architecture":"amd64","os":"linux","config":%s,"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created_by":"nicpool ops/tools/build-images.sh"}]}' \
    "$config" "$layer_digest" > "$layout/config.json"
  local config_digest config_size
  config_digest=$(sha256 "$layout/config.json")
  config_size=$(stat -c %s "$layout/config.json")
  mv "$layout/config.json" "$layout/blobs/sha256/$config_digest"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' \
    "$config_digest" "$config_size" "$layer_digest" "$layer_size" > "$layout/manifest.json"
  local manifest_digest manifest_size
  manifest_digest=$(sha256 "$layout/manifest.json")
  manifest_size=$(stat -c %s "$layout/manifest.json")
  mv "$layout/manifest.json" "$layout/blobs/sha256/$manifest_digest"
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"amd64","os":"linux"},"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
    "$manifest_digest" "$manifest_size" "$name" "${name##*:}" > "$layout/index.json"
  echo '{"imageLayoutVersion":"1.0.0"}' > "$layout/oci-layout"
  tar -C "$layout" -cf "$out.tmp" oci-layout index.json blobs
  mv "$out.tmp" "$out"
  rm -rf "$layout"
  log "wrote $out ($name)"
}

# --- pause ---------------------------------------------------------------------

build_pause() {
  [[ -s "$PAUSE_ARCHIVE" ]] && return
  command -v go >/dev/null || { log "go is not on PATH (needed to find pause.c)"; exit 1; }
  local dir source
  dir=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  source="$dir/build/pause/linux/pause.c"
  [[ -f "$source" ]] || { log "no $source"; exit 1; }
  local rootfs="$work/pause"
  mkdir -p "$rootfs"
  gcc -Os -Wall -Werror -static -DVERSION="$PAUSE_TAG-nicpool" -o "$rootfs/pause" "$source"
  strip "$rootfs/pause"
  oci_archive "$rootfs" "$PAUSE_NAME" \
    '{"Entrypoint":["/pause"],"User":"65535:65535","WorkingDir":"/"}' "$PAUSE_ARCHIVE"
}

# --- busybox -------------------------------------------------------------------

build_busybox() {
  [[ -s "$BUSYBOX_ARCHIVE" ]] && return
  local busybox
  busybox=$(command -v busybox) || { log "busybox-static is not installed"; exit 1; }
  { ldd "$busybox" 2>&1 || true; } | grep -q 'not a dynamic' \
    || { log "$busybox is not static (install busybox-static)"; exit 1; }
  local rootfs="$work/busybox" applet
  mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/tmp" "$rootfs/root"
  chmod 1777 "$rootfs/tmp"
  cp "$busybox" "$rootfs/bin/busybox"
  for applet in $("$busybox" --list); do
    [[ "$applet" == busybox ]] || ln -s busybox "$rootfs/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' \
    > "$rootfs/etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\n' > "$rootfs/etc/group"
  # The seed's pods run `/bin/ash -c "trap : TERM INT; sleep infinity & wait"`;
  # a pod without a command runs the same.
  oci_archive "$rootfs" "$BUSYBOX_NAME" \
    '{"Env":["PATH=/bin"],"Cmd":["/bin/sh","-c","trap : TERM INT; sleep infinity & wait"],"WorkingDir":"/"}' \
    "$BUSYBOX_ARCHIVE"
}

# --- nicpool -------------------------------------------------------------------

debian_mirror() {
  # The machine's own apt source for its suite (deb822 or one-line format).
  local suite=$1 found
  found=$(awk -v s="$suite" '
    /^URIs:/ {uri=$2} /^Suites:/ {for (i = 2; i <= NF; i++) if ($i == s && uri) {print uri; exit}}
    /^deb / {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {u=$i; if ($(i+1) == s) {print u; exit}}}
  ' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null | head -1)
  [[ -n "$found" ]] || { log "no apt source for $suite in /etc/apt"; exit 1; }
  echo "$found"
}

build_base_rootfs() {
  [[ -s "$BASE_ROOTFS" ]] && return
  command -v debootstrap >/dev/null || { log "debootstrap is not installed"; exit 1; }
  local suite mirror rootfs="$work/base"
  suite=$(debian_suite)
  mirror=$(debian_mirror "$suite")
  log "debootstrap $suite (minbase + python3) from the machine's apt source; once per machine"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    "$suite" "$rootfs" "$mirror" > "$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/* \
    "$rootfs"/usr/share/info/* "$rootfs"/var/log/*.log
  tar -C "$rootfs" --numeric-owner -cf "$BASE_ROOTFS.tmp" .
  mv "$BASE_ROOTFS.tmp" "$BASE_ROOTFS"
  rm -rf "$rootfs"
}

build_nicpool() {
  [[ -s "$NICPOOL_ARCHIVE" ]] && return
  build_base_rootfs
  local rootfs="$work/nicpool" wheels="$work/nicpool/tmp/wheels"
  mkdir -p "$rootfs"
  tar -C "$rootfs" -xf "$BASE_ROOTFS"
  mkdir -p "$wheels"
  log "nicpool $(nicpool_version) ($(source_hash)): wheels for it and its dependencies"
  # Built here with this machine's pip (the image's python3 is the same
  # minor version), so the chroot needs no network.
  "${PYTHON:-python3}" -m pip wheel -q --wheel-dir "$wheels" "$REPO" >&2
  mount -t proc proc "$rootfs/proc"
  # A clean environment: the machine's PIP_* settings name its own paths.
  local in_root=(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root chroot "$rootfs")
  "${in_root[@]}" /usr/bin/python3 -m venv /opt/nicpool
  # pip compiles every module: the containers' root file system is read-only.
  "${in_root[@]}" /opt/nicpool/bin/pip install -q --no-index --no-cache-dir \
    --find-links /tmp/wheels nicpool >&2
  umount "$rootfs/proc"
  rm -rf "$wheels" "$rootfs"/opt/nicpool/lib/python3*/site-packages/pip \
    "$rootfs"/root/.cache
  printf 'nonroot:x:65532:65532:nonroot:/home/nonroot:/usr/sbin/nologin\n' >> "$rootfs/etc/passwd"
  printf 'nonroot:x:65532:\n' >> "$rootfs/etc/group"
  oci_archive "$rootfs" "$NICPOOL_NAME" \
    '{"Env":["PATH=/opt/nicpool/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","PYTHONDONTWRITEBYTECODE=1"],"Cmd":["nicpool-controller","--help"],"WorkingDir":"/"}' \
    "$NICPOOL_ARCHIVE"
  # Older builds of the same version are stale now.
  find "$OUT" -maxdepth 1 -name "nicpool-$(nicpool_version)-*.oci.tar" ! -path "$NICPOOL_ARCHIVE" -delete
}

build_pause
build_busybox
build_nicpool
print_paths
