"""The reference document's story on a real node: kubelet, containerd, Multus, macvlan, kube-ovn.

The seed's Subnet, NAD (``master: eth0``), Pods and ip_pool Deployment are
applied as written (images made local, see ``ops/node/seed.py``). Every pod
reaches Running; inside each container ``ip addr`` shows exactly the
addresses the controller annotated, on the interface Multus named; two pods
on the macvlan network ping each other; the default route goes where the
seed asks for it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from ops.demo.pods import attachments
from ops.lab.controllers import wait_for
from ops.node import seed
from ops.node.cluster import NodeCluster
from tests.node.conftest import delete_subnet

pytestmark = pytest.mark.node

NAMED = ("samplepod", "static-ip", "samplepod-route", "samplepod-macvlan")


@pytest.fixture(scope="module")
def seeded(node: NodeCluster) -> Iterator[list[str]]:
    docs = seed.documents(*seed.seed_files())
    node.kubectl("apply", "-f", "-", stdin=seed.as_yaml(docs))

    def all_pods() -> list[str] | None:
        pods = node.pods("default")
        workload = [
            p for p in pods if p["metadata"].get("labels", {}).get("app") == "static-workload"
        ]
        names = {p["metadata"]["name"] for p in pods}
        if set(NAMED) <= names and len(workload) == 2:
            return [*NAMED, *(p["metadata"]["name"] for p in workload)]
        return None

    names = wait_for("the seed's pods", all_pods, timeout=60)
    node.wait_running(names, timeout=180)
    yield names
    others = [d for d in docs if d["kind"] != "Subnet"]
    node.kubectl("delete", "--wait=true", "-f", "-", stdin=seed.as_yaml(others), timeout=180)
    delete_subnet(node, "macvlan")


def nics(pod: dict[str, Any]) -> list[tuple[str, str]]:
    """(interface, annotated address) for each of the pod's macvlan NICs."""
    annotations = pod["metadata"]["annotations"]
    found = []
    for nad, ifname in attachments(annotations, pod["metadata"]["namespace"]):
        name, namespace = nad.split("/")[1], nad.split("/")[0]
        found.append((ifname, annotations[f"{name}.{namespace}.kubernetes.io/ip_address"]))
    return found


def test_every_seed_pod_runs_with_its_annotated_addresses_inside(
    node: NodeCluster, seeded: list[str]
) -> None:
    seen: dict[str, dict[str, list[str]]] = {}
    for name in seeded:
        pod = node.pod(name)
        assert pod["metadata"]["annotations"]["macvlan.default.kubernetes.io/allocated"] == "true"
        for ifname, address in nics(pod):
            inside = node.addresses(name, ifname)
            seen.setdefault(name, {})[ifname] = inside
            assert inside == [f"{address}/16"], f"{name} {ifname}: {inside} vs annotated {address}"
    assert seen["static-ip"] == {"net1": ["172.17.0.100/16"]}
    assert seen["samplepod-macvlan"].keys() == {"eth0"}, "default-network replaces eth0"
    pooled = {seen[name]["net1"][0] for name in seeded if name.startswith("static-workload")}
    assert len(pooled) == 2 and pooled <= {"172.17.0.200/16", "172.17.0.201/16", "172.17.0.202/16"}


def test_two_pods_on_the_macvlan_network_ping_each_other(
    node: NodeCluster, seeded: list[str]
) -> None:
    target = node.addresses("samplepod-route", "net1")[0].split("/")[0]
    out = node.exec("samplepod", "ping", "-c", "3", "-W", "2", target)
    assert re.search(r"3 packets transmitted, 3 packets received", out), out
    samplepod = node.addresses("samplepod", "net1")[0].split("/")[0]
    out = node.exec("static-ip", "ping", "-c", "3", "-W", "2", samplepod)
    assert " 0% packet loss" in out, out


def test_the_default_route_goes_where_the_seed_asks(node: NodeCluster, seeded: list[str]) -> None:
    routes = node.exec("samplepod-route", "ip", "-4", "route", "show", "default")
    assert "default via 172.17.0.1 dev net1" in routes, routes
    routes = node.exec("samplepod-macvlan", "ip", "-4", "route", "show", "default")
    assert "default via 172.17.0.1 dev eth0" in routes, routes
    routes = node.exec("samplepod", "ip", "-4", "route", "show", "default")
    assert "dev net1" not in routes, f"net1 is not samplepod's default route: {routes}"
