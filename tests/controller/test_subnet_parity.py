"""Subnets as Kube-OVN shows them, against a real kube-apiserver and etcd.

What a user sees: ``status.v4usingIPrange`` / ``v4availableIPrange`` in
Kube-OVN's compact form; a Subnet overlapping an older one of the same
network refused with a condition and an Event (and one of another network
accepted); a Subnet with leases kept (finalizer) until its last pod goes;
``kubectl get`` columns for subnets, ippools, ips and vips.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from ops.lab.cluster import Cluster
from ops.lab.controllers import ControllerProcess, wait_for
from ops.lab.kube import ControlPlane
from tests.controller.conftest import leading_controller

pytestmark = pytest.mark.controller
NETWORKS = "k8s.v1.cni.cncf.io/networks"


@pytest.fixture(scope="module")
def controller(control_plane: ControlPlane) -> Iterator[ControllerProcess]:
    yield from leading_controller(control_plane, "subnets")


@pytest.fixture
def cluster(
    control_plane: ControlPlane, controller: ControllerProcess, kube_namespace: str
) -> Iterator[Cluster]:
    found = Cluster(control_plane.api_client())
    config = {"type": "macvlan", "ipam": {"type": "kube-ovn", "provider": f"net.{kube_namespace}"}}
    found.create_nad(kube_namespace, "net", json.dumps(config))
    yield found
    assert controller.alive(), controller.log_tail()


def octet() -> int:
    return int(uuid.uuid4().hex[:4], 16) % 250


def status_of(cluster: Cluster, subnet: str, **wanted: object) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        status = cluster.subnet(subnet).get("status") or {}
        return status if all(status.get(k) == v for k, v in wanted.items()) else None

    return wait_for(f"Subnet {subnet} status {wanted}", probe)


def test_status_shows_used_and_available_ranges(cluster: Cluster, kube_namespace: str) -> None:
    ns, prefix = kube_namespace, f"10.63.{octet()}"
    subnet = f"{ns}-ranges"
    cluster.create_subnet(
        subnet,
        provider=f"net.{ns}",
        cidrBlock=f"{prefix}.0/28",
        excludeIps=[f"{prefix}.8..{prefix}.9"],
    )
    for n, address in enumerate((2, 3, 5)):
        cluster.create_pod(
            ns,
            f"p{n}",
            {NETWORKS: f"{ns}/net", f"net.{ns}.kubernetes.io/ip_address": f"{prefix}.{address}"},
        )
        cluster.allocated(ns, f"p{n}", f"net.{ns}")
    status = status_of(cluster, subnet, v4usingIPs=3)
    assert status["v4usingIPrange"] == f"{prefix}.2-{prefix}.3,{prefix}.5"
    # .0 network, .1 gateway, .8-.9 excluded, .15 broadcast
    assert (
        status["v4availableIPrange"] == f"{prefix}.4,{prefix}.6-{prefix}.7,{prefix}.10-{prefix}.14"
    )
    assert status["v4availableIPs"] == 8
    assert (status["v6usingIPs"], status["v6usingIPrange"]) == (0, "")
    ready = cluster.condition("subnets", subnet)
    assert (ready["status"], ready["reason"]) == ("True", "SubnetReady")


def test_an_overlapping_subnet_of_the_same_network_is_refused(
    cluster: Cluster, kube_namespace: str
) -> None:
    ns, prefix = kube_namespace, f"10.64.{octet()}"
    older, newer, elsewhere = f"{ns}-older", f"{ns}-newer", f"{ns}-elsewhere"
    cluster.create_subnet(older, provider=f"net.{ns}", cidrBlock=f"{prefix}.0/24")
    cluster.wait_condition("subnets", older, "True")
    cluster.create_subnet(newer, provider=f"net.{ns}", cidrBlock=f"{prefix}.128/25")
    cluster.create_subnet(elsewhere, provider=f"other.{ns}", cidrBlock=f"{prefix}.0/24")
    event = cluster.wait_event("default", newer, "CIDROverlap")
    assert event.type == "Warning" and older in str(event.message)
    refused = cluster.wait_condition("subnets", newer, "False", "CIDROverlap")
    assert older in refused["message"]
    cluster.wait_condition("subnets", elsewhere, "True")
    cluster.create_pod(
        ns, "pinned", {NETWORKS: f"{ns}/net", f"net.{ns}.kubernetes.io/logical_switch": newer}
    )
    event = cluster.wait_event(ns, "pinned", "UnknownSubnet")
    assert not any(k.endswith("/allocated") for k in cluster.annotations(ns, "pinned"))
    # The older one goes: the newer one is no longer in conflict and serves.
    cluster.delete_cluster_object("subnets", older)
    cluster.allocated(ns, "pinned", f"net.{ns}")
    cluster.wait_condition("subnets", newer, "True")


def test_a_subnet_with_leases_waits_for_the_last_one(cluster: Cluster, kube_namespace: str) -> None:
    ns = kube_namespace
    subnet = f"{ns}-held"
    cluster.create_subnet(subnet, provider=f"net.{ns}", cidrBlock=f"10.65.{octet()}.0/24")
    cluster.create_pod(ns, "holder", {NETWORKS: f"{ns}/net"})
    cluster.allocated(ns, "holder", f"net.{ns}")
    cluster.delete_cluster_object("subnets", subnet)
    event = cluster.wait_event("default", subnet, "SubnetInUse")
    assert "1 leases" in str(event.message)
    cluster.wait_condition("subnets", subnet, "False", "SubnetInUse")
    cluster.create_pod(ns, "late", {NETWORKS: f"{ns}/net"})
    cluster.wait_event(ns, "late", "SubnetDeleting")
    cluster.delete_pod(ns, "holder")
    cluster.gone("subnets", subnet)


def pool_used(cluster: Cluster, pool: str) -> object:
    return ((cluster.kubeovn("ippools", pool) or {}).get("status") or {}).get("v4UsingIPs")


def table_row(plane: ControlPlane, plural: str, name: str) -> dict[str, Any]:
    """The row `kubectl get <plural> <name>` prints, as {column: value}."""
    response = plane.api_client().call_api(
        "GET",
        f"{plane.server}/apis/kubeovn.io/v1/{plural}/{name}",
        header_params={
            "Accept": "application/json;as=Table;v=v1;g=meta.k8s.io",
            "Authorization": f"Bearer {plane.admin_token}",
        },
    )
    response.read()
    table = json.loads(response.data)
    names = [column["name"] for column in table["columnDefinitions"]]
    return dict(zip(names, table["rows"][0]["cells"], strict=True))


def test_kubectl_get_shows_used_available_namespaces_pod_and_node(
    cluster: Cluster, control_plane: ControlPlane, kube_namespace: str
) -> None:
    ns, prefix = kube_namespace, f"10.66.{octet()}"
    subnet, pool, vip = f"{ns}-cols", f"{ns}-pool", f"{ns}-vip"
    cluster.create_subnet(subnet, provider=f"net.{ns}", cidrBlock=f"{prefix}.0/24")
    cluster.create_ippool(pool, subnet=subnet, ips=[f"{prefix}.10..{prefix}.19"], namespaces=[ns])
    cluster.create_vip(vip, subnet=subnet, namespace=ns)
    cluster.create_pod(ns, "web", {NETWORKS: f"{ns}/net"})
    cluster.allocated(ns, "web", f"net.{ns}")
    wait_for("the pool counts the pod", lambda: pool_used(cluster, pool) == 1)
    pools = table_row(control_plane, "ippools", pool)
    assert (pools["Subnet"], pools["V4Used"], pools["V4Available"], pools["Namespaces"]) == (
        subnet,
        1,
        9,
        f'["{ns}"]',
    )
    status_of(cluster, subnet, v4usingIPs=2)  # the pod and the Vip
    subnets = table_row(control_plane, "subnets", subnet)
    assert subnets["V4Used"] == 2
    assert subnets["V4Available"] == 253 - 2  # the pod and the Vip; a pool's free addresses count
    vips = table_row(control_plane, "vips", vip)
    assert (
        vips["Namespace"] == ns and vips["V4IP"] and vips["Subnet"] == subnet and vips["Pod"] == ""
    )
    ip = table_row(control_plane, "ips", f"web.{ns}.net.{ns}")
    assert (ip["Pod"], ip["Namespace"], ip["Subnet"]) == ("web", ns, subnet)
    assert "Node" in ip
