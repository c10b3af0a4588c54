"""Fixtures for the node tier: one real node for the tier, and test networks on it.

The tier attaches to a node ``make cluster`` left running (and leaves it
running), or brings one up with nicpool deployed from ``ops/deploy`` and
removes it after its last test (package scope, so the check is not blurred
by other tiers), checking that nothing is left behind and that the
machine's sysctls and links are as they were. Each test module that needs
its own addresses gets a namespace with a macvlan NAD (``master: eth0``,
``kube-ovn`` IPAM) and a Subnet of its own, removed afterwards.
"""

from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from ops.lab.controllers import wait_for
from ops.node import assets, mounts, network, teardown
from ops.node.cluster import NodeCluster, start
from ops.node.deploy import wait_rolled_out
from ops.node.runtime import BUSYBOX_IMAGE
from tests.support.components import missing


def machine_view() -> dict[str, object]:
    """What the node must not change on this machine: sysctls and its own links."""
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True)
    return {
        "sysctls": mounts.machine_sysctls(),
        "ip_forward": Path("/proc/sys/net/ipv4/ip_forward").read_text().strip(),
        "links": sorted(line.split(":")[1].strip() for line in links.stdout.splitlines()),
    }


@pytest.fixture(scope="package")
def machine_before() -> dict[str, object]:
    return machine_view()


@pytest.fixture(scope="package")
def node(machine_before: dict[str, object]) -> Iterator[NodeCluster]:
    attached = NodeCluster.attach()
    if attached is not None:
        wait_rolled_out(attached.layout)
        yield attached
        return
    inputs = assets.find()
    if isinstance(inputs, str):
        missing("the real node (kubelet + containerd)", inputs)
        raise AssertionError("unreachable")
    if network.exists():
        pytest.fail(f"{network.netns_path()} exists but no node answers: make cluster-down")
    cluster = start(inputs)
    try:
        yield cluster
    finally:
        left = teardown.down(cluster.layout) + teardown.leftovers(cluster.layout)
        assert not left, f"make cluster-down left: {left}"
        assert machine_view() == machine_before, "the node changed this machine"


@dataclass
class Net:
    """A namespace with its own macvlan NAD and Subnet (provider ``macvlan.<ns>``)."""

    node: NodeCluster
    namespace: str
    cidr: str

    def address(self, host: int) -> str:
        return self.cidr.rsplit(".", 1)[0] + f".{host}"

    def pod(self, name: str, annotations: dict[str, str] | None = None) -> dict[str, object]:
        """A busybox pod attached to this network as net1."""
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": self.namespace,
                "annotations": {"k8s.v1.cni.cncf.io/networks": "macvlan", **(annotations or {})},
            },
            "spec": {
                "terminationGracePeriodSeconds": 1,
                "containers": [{"name": "c", "image": BUSYBOX_IMAGE, "imagePullPolicy": "Never"}],
            },
        }

    def create(self, *docs: dict[str, object]) -> None:
        self.node.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(docs))

    def lease(self, pod: str) -> str:
        """The address the controller annotated for the pod's net1."""
        key = f"macvlan.{self.namespace}.kubernetes.io/ip_address"

        def annotated() -> str | None:
            found = self.node.pod(pod, self.namespace)["metadata"].get("annotations", {})
            return found.get(key) if found.get(key.replace("ip_address", "allocated")) else None

        return wait_for(f"{pod} allocated", annotated, timeout=60, every=0.3)


def make_net(node: NodeCluster, cidr: str) -> Iterator[Net]:
    namespace = f"t-{secrets.token_hex(3)}"
    node.kubectl("create", "namespace", namespace)
    wait_for(
        "the namespace's default ServiceAccount",
        lambda: "default" in node.kubectl("-n", namespace, "get", "serviceaccounts"),
        timeout=60,
    )
    nad_config = {
        "cniVersion": "0.3.1",
        "type": "macvlan",
        "master": "eth0",
        "mode": "bridge",
        "ipam": {
            "type": "kube-ovn",
            "server_socket": "/run/openvswitch/kube-ovn-daemon.sock",
            "provider": f"macvlan.{namespace}",
        },
    }
    net = Net(node, namespace, cidr)
    net.create(
        {
            "apiVersion": "k8s.cni.cncf.io/v1",
            "kind": "NetworkAttachmentDefinition",
            "metadata": {"name": "macvlan", "namespace": namespace},
            "spec": {"config": json.dumps(nad_config)},
        },
        {
            "apiVersion": "kubeovn.io/v1",
            "kind": "Subnet",
            "metadata": {"name": namespace},
            "spec": {
                "protocol": "IPv4",
                "provider": f"macvlan.{namespace}",
                "cidrBlock": cidr,
                "excludeIps": [f"{net.address(0)}..{net.address(9)}"],
            },
        },
    )
    try:
        yield net
    finally:
        node.kubectl("delete", "namespace", namespace, "--wait=true", timeout=180)
        delete_subnet(node, namespace)


def delete_subnet(node: NodeCluster, name: str) -> None:
    """Delete a Subnet once its pods' leases are released (nicpool refuses it before)."""

    def deleted() -> bool:
        try:
            node.kubectl("delete", "subnet", name, "--ignore-not-found", "--wait=true", timeout=30)
        except (RuntimeError, subprocess.TimeoutExpired):
            return False
        return True

    wait_for(f"subnet {name} deleted", deleted, timeout=120, every=1)
