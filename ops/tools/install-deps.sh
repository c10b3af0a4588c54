#!/usr/bin/env bash
# Installs the system parts the test tiers and the demo run for real, when
# missing: etcd (Debian), the CNI reference plugins, Prometheus, iproute2.
# Safe to run again; does nothing when everything is present.
set -euo pipefail
need=()
command -v etcd >/dev/null || need+=(etcd-server)
command -v etcdctl >/dev/null || need+=(etcd-client)
[[ -x /usr/lib/cni/macvlan ]] || need+=(containernetworking-plugins)
command -v prometheus >/dev/null || need+=(prometheus)
command -v promtool >/dev/null || need+=(prometheus)
command -v ip >/dev/null || need+=(iproute2)
command -v openssl >/dev/null || need+=(openssl)
if ((${#need[@]} == 0)); then
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps: missing ${need[*]}; run as root or install them yourself" >&2
  exit 1
fi
echo "install-deps: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# Debian starts the packaged services; nicpool's tests start their own on
# loopback ports, so the system copies are stopped to keep 2379/9090 free.
for svc in etcd prometheus prometheus-node-exporter; do
  systemctl stop "$svc" 2>/dev/null || service "$svc" stop 2>/dev/null || true
done
