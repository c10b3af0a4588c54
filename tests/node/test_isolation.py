"""The node stays inside its own namespaces: the machine's sysctls, links and mounts are untouched.

kubelet sets kernel tunables at start and the bridge plugin enables IP
forwarding; here both happen only where the node can see them (its mount
namespace's /proc/sys overlays, its network namespace's own sysctl).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ops.node import network
from ops.node.cluster import NodeCluster
from ops.node.layout import NODE_PATHS
from tests.node.conftest import machine_view

pytestmark = pytest.mark.node


def test_the_machine_keeps_its_sysctls_and_links(
    node: NodeCluster, machine_before: dict[str, object]
) -> None:
    assert machine_view() == machine_before


def test_ip_forwarding_is_on_in_the_node_namespace_only(
    node: NodeCluster, machine_before: dict[str, object]
) -> None:
    assert network.forward_ip() == "1", "the bridge plugin's isGateway, for the node's pods"
    assert machine_view()["ip_forward"] == machine_before["ip_forward"]


def test_the_node_mounts_nothing_on_the_machine(node: NodeCluster) -> None:
    targets = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    inside_root = [t for t in targets if t.startswith(str(node.layout.root))]
    assert sorted(inside_root) == sorted([str(node.layout.ns_dir), str(node.layout.mount_ns)])
    assert not [t for t in targets if t in NODE_PATHS]
