"""The agent's pod is replaced while pods are being created: their CNI ADDs wait and succeed.

The pods are created once the old agent has left its socket: their first
sandboxes fail (the plugin: "the node agent is unreachable", CNI error 11,
"try again later"), kubelet retries them, and once the DaemonSet's new agent
is up every pod starts with the address the controller annotated. The
DaemonSet is held (a node selector no node matches) until a sandbox has met
the agent's absence, so the test never depends on which comes first.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from ops.lab.controllers import wait_for
from ops.node.cluster import AGENT_SELECTOR, NICPOOL, NodeCluster
from tests.node.conftest import Net, make_net

pytestmark = pytest.mark.node


@pytest.fixture(scope="module")
def net(node: NodeCluster) -> Iterator[Net]:
    yield from make_net(node, "172.18.3.0/24")


def test_pods_created_while_the_agent_restarts_start_once_it_is_back(
    node: NodeCluster, net: Net
) -> None:
    (old,) = node.pods(NICPOOL, AGENT_SELECTOR)
    socket = node.layout.openvswitch / "kube-ovn-daemon.sock"
    assert socket.exists()
    hold_agents(node, True)
    try:
        node.kubectl("-n", NICPOOL, "delete", "pod", old["metadata"]["name"], "--wait=false")
        wait_for(
            "the old agent to leave the socket", lambda: not socket.exists(), timeout=60, every=0.05
        )
        names = [f"during-{i}" for i in range(3)]
        net.create(*(net.pod(name) for name in names))
        wait_for("a sandbox to meet the agent's absence", lambda: sandboxes_retried(node, net), 120)
    finally:
        hold_agents(node, False)

    def replaced() -> bool:
        pods = node.pods(NICPOOL, AGENT_SELECTOR)
        return (
            len(pods) == 1
            and pods[0]["metadata"]["uid"] != old["metadata"]["uid"]
            and (node.ready(pods[0]))
        )

    wait_for("a new agent pod, Ready", replaced, timeout=120, every=0.5)
    node.wait_running(names, net.namespace, timeout=180)
    for name in names:
        assert node.addresses(name, "net1", net.namespace) == [f"{net.lease(name)}/24"]


def hold_agents(node: NodeCluster, held: bool) -> None:
    """No agent pod runs anywhere while held; the DaemonSet as deployed after."""
    selector = {"nicpool.test/held": "true"} if held else None  # None: the key removed
    patch = json.dumps({"spec": {"template": {"spec": {"nodeSelector": selector}}}})
    node.kubectl("-n", NICPOOL, "patch", "daemonset", "nicpool-agent", "--type=merge", "-p", patch)


def sandboxes_retried(node: NodeCluster, net: Net) -> list[str]:
    """Pods whose sandbox failed with the plugin's "agent is unreachable" (CNI 11)."""
    return [
        e["involvedObject"]["name"]
        for e in node.json("-n", net.namespace, "get", "events")["items"]
        if e["reason"] == "FailedCreatePodSandBox" and "agent is unreachable" in e["message"]
    ]
