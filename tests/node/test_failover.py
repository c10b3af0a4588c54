"""The controller's leader dies on a real node: allocation resumes, the replica comes back.

Twice: the leader's pod force-deleted (``kubectl delete pod --grace-period=0
--force``: the Deployment replaces it) and the leader's process killed with
SIGKILL (kubelet restarts the container). Each time a new pod is allocated,
wired by kubelet and shows its address inside.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ops.lab.controllers import wait_for
from ops.node.cluster import CONTROLLER_SELECTOR, NICPOOL, NodeCluster
from tests.node.conftest import Net, make_net

pytestmark = pytest.mark.node


@pytest.fixture(scope="module")
def net(node: NodeCluster) -> Iterator[Net]:
    yield from make_net(node, "172.18.2.0/24")


def allocated_and_wired(node: NodeCluster, net: Net, name: str) -> None:
    net.create(net.pod(name))
    address = net.lease(name)
    node.wait_running([name], net.namespace)
    assert node.addresses(name, "net1", net.namespace) == [f"{address}/24"]


def three_ready(node: NodeCluster) -> list[str] | None:
    pods = [p for p in node.pods(NICPOOL, CONTROLLER_SELECTOR) if node.ready(p)]
    return [p["metadata"]["name"] for p in pods] if len(pods) == 3 else None


def test_leader_pod_deleted(node: NodeCluster, net: Net) -> None:
    leader = wait_for("a leader", node.leader, timeout=60)
    node.kubectl("-n", NICPOOL, "delete", "pod", leader, "--grace-period=0", "--force")
    allocated_and_wired(node, net, "after-delete")
    replicas = wait_for(
        "three Ready replicas again", lambda: three_ready(node), timeout=120, every=0.5
    )
    assert leader not in replicas
    assert wait_for("a new leader", node.leader, timeout=60) != leader


def test_leader_process_killed(node: NodeCluster, net: Net) -> None:
    leader = wait_for("a leader", node.leader, timeout=60)

    def restarts() -> int:
        (status,) = node.pod(leader, NICPOOL)["status"]["containerStatuses"]
        return int(status["restartCount"])

    before = restarts()
    node.kill_container(NICPOOL, leader, "controller")
    allocated_and_wired(node, net, "after-kill")
    wait_for("kubelet to restart the killed container", lambda: restarts() > before, 120)
    wait_for("three Ready replicas again", lambda: three_ready(node), timeout=120, every=0.5)
