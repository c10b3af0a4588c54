"""An upgrade on a real node: the controller Deployment rolls to a new image tag while pods churn.

The new tag is a second name for the imported image (no registry to push a
new build to), so kubelet really replaces every replica one by one
(``maxUnavailable: 1, maxSurge: 0``) and leadership moves between versions
of the Deployment. Meanwhile pods are created and deleted. Afterwards every
live pod is allocated and wired, no two share an address, ``nicpoolctl
audit`` finds nothing, and the controller reported no allocation error.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from ops.lab.controllers import wait_for
from ops.node.cluster import NICPOOL, NodeCluster
from ops.node.deploy import wait_rolled_out
from ops.node.runtime import NICPOOL_IMAGE
from tests.node.conftest import Net, make_net

pytestmark = pytest.mark.node

NEW_IMAGE = f"{NICPOOL_IMAGE}-rolled"
DEPLOYMENT = "deployment/nicpool-controller"


@pytest.fixture(scope="module")
def net(node: NodeCluster) -> Iterator[Net]:
    yield from make_net(node, "172.18.4.0/24")


@pytest.fixture
def rolled(node: NodeCluster) -> Iterator[None]:
    node.tag_image(NICPOOL_IMAGE, NEW_IMAGE)
    node.kubectl("-n", NICPOOL, "set", "image", DEPLOYMENT, f"controller={NEW_IMAGE}")
    yield
    node.kubectl("-n", NICPOOL, "set", "image", DEPLOYMENT, f"controller={NICPOOL_IMAGE}")
    wait_rolled_out(node.layout)


def rolled_out(node: NodeCluster) -> bool:
    status = node.kubectl("-n", NICPOOL, "rollout", "status", DEPLOYMENT, "--watch=false")
    return "successfully rolled out" in status


def test_rolling_the_controller_while_pods_churn(node: NodeCluster, net: Net, rolled: None) -> None:
    created: list[str] = []
    deadline = time.monotonic() + 300
    while not rolled_out(node) or len(created) < 6:
        assert time.monotonic() < deadline, "the rollout did not finish in 300 s"
        name = f"churn-{len(created)}"
        net.create(net.pod(name))
        created.append(name)
        if len(created) > 2:
            node.kubectl("-n", net.namespace, "delete", "pod", created[-3], "--wait=false")
        time.sleep(1)  # pacing the churn, not waiting for a state
    alive = created[-2:]
    node.wait_running(alive, net.namespace, timeout=180)
    addresses = [net.lease(name) for name in alive]
    for name, address in zip(alive, addresses, strict=True):
        assert node.addresses(name, "net1", net.namespace) == [f"{address}/24"]
    assert len(set(addresses)) == len(addresses)

    images = {
        c["image"]
        for p in node.pods(NICPOOL, "app.kubernetes.io/name=nicpool-controller")
        for c in p["spec"]["containers"]
    }
    assert images == {NEW_IMAGE}
    wait_for("a leader on the new version", node.leader, timeout=60)
    audit = node.nicpoolctl("audit", "--json", "-n", net.namespace)
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert json.loads(audit.stdout)["ok"] is True
    events = node.json("-n", net.namespace, "get", "events")["items"]
    warnings = [
        f"{e['reason']}: {e['message']}"
        for e in events
        if e["type"] == "Warning" and e.get("source", {}).get("component") == "nicpool-controller"
    ]
    assert warnings == []
