"""Pod deletion on a real node: kubelet calls CNI DEL, the controller releases, the address returns.

A StatefulSet pod deleted and recreated by its controller (a new pod, a new
UID, a new container) comes back with the same address inside.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ops.lab.controllers import wait_for
from ops.node.cluster import AGENT_SELECTOR, NICPOOL, NodeCluster
from ops.node.runtime import BUSYBOX_IMAGE
from tests.node.conftest import Net, make_net

pytestmark = pytest.mark.node


@pytest.fixture(scope="module")
def net(node: NodeCluster) -> Iterator[Net]:
    yield from make_net(node, "172.18.1.0/24")


def agent_deletes(node: NodeCluster) -> float:
    """How many CNI DELs the agent has answered (its own metric, scraped through the apiserver)."""
    (agent,) = node.pods(NICPOOL, AGENT_SELECTOR)
    found = node.metric(
        NICPOOL, agent["metadata"]["name"], 10666, 'nicpool_cni_request_seconds_count{verb="del"}'
    )
    return found or 0.0


def test_a_deleted_pod_is_released_and_its_address_reused(node: NodeCluster, net: Net) -> None:
    net.create(net.pod("first"))
    address = net.lease("first")
    node.wait_running(["first"], net.namespace)
    assert node.addresses("first", "net1", net.namespace) == [f"{address}/24"]
    assert node.nicpoolctl("lease", "show", address).returncode == 0
    deletes = agent_deletes(node)

    node.kubectl("-n", net.namespace, "delete", "pod", "first", "--wait=true")
    wait_for("kubelet's CNI DEL to reach the agent", lambda: agent_deletes(node) > deletes, 60)
    wait_for(
        f"the controller to release {address}",
        lambda: node.nicpoolctl("lease", "show", address).returncode == 1,
        timeout=60,
    )

    # Freed addresses are handed out last, so ask for it: only a released
    # address can be given to another pod.
    fixed = {f"macvlan.{net.namespace}.kubernetes.io/ip_address": address}
    net.create(net.pod("second", fixed))
    assert net.lease("second") == address
    node.wait_running(["second"], net.namespace)
    assert node.addresses("second", "net1", net.namespace) == [f"{address}/24"]


def test_a_statefulset_pod_comes_back_with_its_address(node: NodeCluster, net: Net) -> None:
    labels = {"app": "db"}
    net.create(
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": "db", "namespace": net.namespace},
            "spec": {
                "replicas": 1,
                "serviceName": "db",
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {
                        "labels": labels,
                        "annotations": {"k8s.v1.cni.cncf.io/networks": "macvlan"},
                    },
                    "spec": {
                        "terminationGracePeriodSeconds": 1,
                        "containers": [
                            {"name": "c", "image": BUSYBOX_IMAGE, "imagePullPolicy": "Never"}
                        ],
                    },
                },
            },
        }
    )
    address = net.lease("db-0")
    node.wait_running(["db-0"], net.namespace)
    first_uid = node.pod("db-0", net.namespace)["metadata"]["uid"]
    assert node.addresses("db-0", "net1", net.namespace) == [f"{address}/24"]

    node.kubectl("-n", net.namespace, "delete", "pod", "db-0", "--wait=true")

    def recreated() -> bool:
        pod = node.pod("db-0", net.namespace)
        return pod["metadata"]["uid"] != first_uid and pod["status"].get("phase") == "Running"

    wait_for("db-0 recreated and Running", recreated, timeout=120, every=0.5)
    assert net.lease("db-0") == address
    assert node.addresses("db-0", "net1", net.namespace) == [f"{address}/24"]
