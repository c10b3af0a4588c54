#!/usr/bin/env bash
# Installs what the real node (ops/node: make cluster, make demo-node, the
# node test tier) needs from Debian, when missing: containerd and runc (the
# runtime kubelet drives), busybox-static (the test image) and debootstrap
# (nicpool's image). Safe to run again; does nothing when all are present.
# Installing containerd starts no daemon the node uses: the node runs its own
# containerd with its own root, state and socket (ops/node/runtime.py).
set -euo pipefail
need=()
command -v containerd >/dev/null || need+=(containerd)
command -v ctr >/dev/null || need+=(containerd)
command -v runc >/dev/null || need+=(runc)
dpkg-query -W -f '${Status}' busybox-static 2>/dev/null | grep -q 'ok installed' \
  || need+=(busybox-static)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v nsenter >/dev/null || need+=(util-linux)
if ((${#need[@]} == 0)); then
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "install-node-deps: missing ${need[*]}; run as root or install them yourself" >&2
  exit 1
fi
echo "install-node-deps: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
