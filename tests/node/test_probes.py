"""kubelet's view of the agent: not Ready while its etcd is unreachable, Ready again after.

nicpool's etcd (a host process of the node) is stopped; the agent's
readiness probe (``/readyz``, which reads etcd every 2 s) fails and kubelet
marks the pod not Ready; etcd is started again on the same data and the pod
turns Ready. Liveness (``/healthz``) does not follow etcd: the agent is never
restarted for it.
"""

from __future__ import annotations

from typing import Any

import pytest

from ops.lab.controllers import wait_for
from ops.node.cluster import AGENT_SELECTOR, NICPOOL, NodeCluster
from ops.node.deploy import wait_rolled_out

pytestmark = pytest.mark.node


def agent(node: NodeCluster) -> Any:
    (pod,) = node.pods(NICPOOL, AGENT_SELECTOR)
    return pod


def test_agent_readiness_follows_its_etcd(node: NodeCluster) -> None:
    wait_for("the agent Ready", lambda: node.ready(agent(node)), timeout=60)
    restarts = agent(node)["status"]["containerStatuses"][0]["restartCount"]
    node.stop_nicpool_etcd()
    try:
        wait_for("the agent not Ready", lambda: not node.ready(agent(node)), timeout=90)
    finally:
        node.start_nicpool_etcd()
    wait_for("the agent Ready again", lambda: node.ready(agent(node)), timeout=90)
    assert agent(node)["status"]["containerStatuses"][0]["restartCount"] == restarts
    wait_rolled_out(node.layout)
