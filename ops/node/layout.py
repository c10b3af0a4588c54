"""Where the node keeps everything, and the addresses it uses.

One directory (``/var/lib/nicpool-node``, or ``NICPOOL_NODE_DIR``) holds all
the node's state: certificates, both etcd data dirs, containerd's root and
state, kubelet's root, CNI config and caches, logs, and ``state.json`` (what
is running, with which process ids). ``make cluster-down`` removes it.

Inside the node's mount namespace a few paths a node conventionally has are
bind mounts of directories in here (:data:`NODE_PATHS`): the CNI bin dir the
agent's init container writes ``kube-ovn`` into, the socket directory the
seed's NADs name, libcni's cache, kubelet's container-log links and
containerd's runtime directory. Manifests and NADs written for a real node
(``/opt/cni/bin``, ``/run/openvswitch/kube-ovn-daemon.sock``) therefore work
unchanged, and the machine's own directories are never written.

Addresses live in the node's network namespace only: the node's ``eth0``
(a veth, the seed NAD's ``master``) carries :data:`NODE_IP`, and ``lo``
carries :data:`SERVICE_IP`, the ``kubernetes`` Service's ClusterIP, so pods
reach the apiserver through the in-cluster config without a kube-proxy.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

NODE_NAME = "nicpool-node"
NETNS = "nicpool-node"
NODE_IF, NODE_PEER = "eth0", "np-wire0"
NODE_IP = "10.99.0.1"
NODE_PREFIX = 24
SERVICE_CIDR = "10.0.0.0/24"
SERVICE_IP = "10.0.0.1"
"""First address of SERVICE_CIDR: the ``kubernetes`` Service, bound on the node's lo."""
POD_CIDR = "10.244.0.0/24"
APISERVER_PORT = 443
"""The Service's port: pods dial SERVICE_IP:443 and reach the apiserver itself."""
KUBE_ETCD_PORT = 12379
NICPOOL_ETCD_PORT = 2379
CGROUP_ROOT = "/nicpool-node"
"""kubelet's cgroupRoot, in every cgroup v1 hierarchy (and the unified one)."""

NODE_PATHS = (
    "/opt/cni/bin",
    "/run/openvswitch",
    "/run/containerd",
    "/var/lib/cni",
    "/var/log/containers",
)
"""Paths the node sees as bind mounts of ``<root>/fs/<path>`` (see the module docstring)."""


def default_root() -> Path:
    return Path(os.environ.get("NICPOOL_NODE_DIR", "/var/lib/nicpool-node"))


@dataclass(frozen=True)
class Layout:
    """Paths under the node's root directory."""

    root: Path

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def ns_dir(self) -> Path:
        """Holds ``mnt``, the node's persisted mount namespace."""
        return self.root / "ns"

    @property
    def mount_ns(self) -> Path:
        return self.ns_dir / "mnt"

    def node_path(self, path: str) -> Path:
        """The lab directory the node sees at ``path`` (one of NODE_PATHS)."""
        return self.root / "fs" / path.lstrip("/")

    @property
    def cni_bin(self) -> Path:
        return self.node_path("/opt/cni/bin")

    @property
    def openvswitch(self) -> Path:
        return self.node_path("/run/openvswitch")

    @property
    def containerd_run(self) -> Path:
        return self.node_path("/run/containerd")

    @property
    def containerd_socket(self) -> Path:
        """The socket as the machine sees it (the node sees /run/containerd/...)."""
        return self.containerd_run / "containerd.sock"

    @property
    def containerd_dir(self) -> Path:
        return self.root / "containerd"

    @property
    def cni_conf(self) -> Path:
        return self.root / "cni" / "net.d"

    @property
    def kubelet_dir(self) -> Path:
        return self.root / "kubelet"

    @property
    def sysctl_dir(self) -> Path:
        return self.root / "sysctl"

    @property
    def admin_kubeconfig(self) -> Path:
        """The admin's kubeconfig for this machine (through the forwarded port)."""
        return self.root / "admin.kubeconfig"

    @property
    def node_kubeconfigs(self) -> Path:
        """Kubeconfigs for components inside the node's network namespace."""
        return self.root / "kubeconfigs"
