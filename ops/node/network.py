"""The node's network namespace: its own ``eth0``, loopback and addresses.

Everything of the node runs in one network namespace the lab creates
(``ip netns add nicpool-node``): the control plane, containerd, kubelet, the
hostNetwork pods (nicpool's agent), and the bridge and veths of the cluster
network. So listeners on 0.0.0.0 stay inside it, the bridge plugin's
``isGateway`` sets ``ip_forward`` for this namespace only (the sysctl is per
namespace; the machine's stays as it was), and deleting the namespace at
teardown deletes every link the node made.

Links: a veth pair ``eth0`` / ``np-wire0``, both ends inside; ``eth0`` holds
the node's address (kubelet refuses a loopback node IP) and is the master of
the seed's macvlan NAD, whose pods then talk to each other through
macvlan's bridge mode. ``lo`` also holds the ``kubernetes`` Service's
ClusterIP, so a pod's in-cluster config reaches the apiserver (which listens
on 0.0.0.0:443 here) with no kube-proxy. The machine's own links are never
named: every ``ip`` call below goes through ``ip -n <node netns>``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from ops.node.layout import NETNS, NODE_IF, NODE_IP, NODE_PEER, NODE_PREFIX, SERVICE_IP

NETNS_DIR = Path("/run/netns")


def netns_path() -> Path:
    return NETNS_DIR / NETNS


def ip(*args: str, check: bool = True) -> str:
    """``ip -n <node netns> ...``: never the machine's own namespace."""
    argv = ["ip", "-n", NETNS, *args]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if check and done.returncode:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip()}")
    return done.stdout


def exists() -> bool:
    return netns_path().exists()


def create() -> None:
    """The namespace, its veth pair, addresses and routes."""
    done = subprocess.run(
        ["ip", "netns", "add", NETNS], capture_output=True, text=True, check=False
    )
    if done.returncode:
        raise RuntimeError(f"ip netns add {NETNS}: {done.stderr.strip()}")
    ip("link", "set", "lo", "up")
    ip("addr", "add", f"{SERVICE_IP}/32", "dev", "lo")
    ip("link", "add", NODE_IF, "type", "veth", "peer", "name", NODE_PEER)
    ip("addr", "add", f"{NODE_IP}/{NODE_PREFIX}", "dev", NODE_IF)
    for link in (NODE_IF, NODE_PEER):
        ip("link", "set", link, "up")


def delete() -> None:
    """Deleting the namespace deletes every link in it (bridge, veths, macvlans)."""
    if exists():
        subprocess.run(["ip", "netns", "del", NETNS], capture_output=True, check=False)


def forward_ip() -> str:
    """``net.ipv4.ip_forward`` as the node namespace sees it (the machine's is separate)."""
    done = subprocess.run(
        ["ip", "netns", "exec", NETNS, "cat", "/proc/sys/net/ipv4/ip_forward"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()
