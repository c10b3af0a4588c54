"""Kube-OVN Vips against a real kube-apiserver and etcd: reserved addresses, borrowed by one pod.

What a user sees: a Vip shows the address and MAC it reserved
(``status.v4ip``, ``status.mac``) and which pod uses it (``status.pod``); no
pod without the Vip's annotation ever gets that address, even when the
Subnet runs out; a pod annotated ``<provider>.kubernetes.io/vip`` or
``ovn.kubernetes.io/vip`` gets exactly that address and MAC; a second pod
asking for a Vip in use, or for a Vip that does not exist, gets a Warning
Event and nothing; when the first pod goes, the second gets the address;
a Vip in use is not deleted until its pod goes.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from ops.lab.cluster import Cluster
from ops.lab.controllers import ControllerProcess, wait_for
from ops.lab.kube import ControlPlane
from tests.controller.conftest import leading_controller

pytestmark = pytest.mark.controller
NETWORKS = "k8s.v1.cni.cncf.io/networks"


@dataclass
class Net:
    cluster: Cluster
    ns: str
    provider: str
    subnet: str
    prefix: str

    def pod(self, name: str, **annotations: str) -> None:
        self.cluster.create_pod(self.ns, name, {NETWORKS: f"{self.ns}/net", **annotations})

    def allocated(self, name: str) -> tuple[str, str]:
        found = self.cluster.allocated(self.ns, name, self.provider)
        key = f"{self.provider}.kubernetes.io"
        return found[f"{key}/ip_address"], found[f"{key}/mac_address"]

    def refused(self, name: str, reason: str) -> str:
        event = self.cluster.wait_event(self.ns, name, reason)
        assert event.type == "Warning"
        annotations = self.cluster.annotations(self.ns, name)
        assert not any(k.endswith("/allocated") for k in annotations), annotations
        return str(event.message)

    def vip(self, name: str, **spec: Any) -> dict[str, Any]:
        """Create Vip ``name`` in this Subnet and wait for its reservation."""
        self.cluster.create_vip(name, subnet=self.subnet, **spec)
        return self.vip_status(name, lambda s: bool(s.get("v4ip")))

    def vip_status(self, name: str, ok: Any) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            status = (self.cluster.kubeovn("vips", name) or {}).get("status") or {}
            return status if ok(status) else None

        return wait_for(f"Vip {name} status", probe)

    def key(self, suffix: str) -> str:
        return f"{self.provider}.kubernetes.io/{suffix}"


@pytest.fixture(scope="module")
def controller(control_plane: ControlPlane) -> Iterator[ControllerProcess]:
    yield from leading_controller(control_plane, "vips")


@pytest.fixture
def net(
    control_plane: ControlPlane, controller: ControllerProcess, kube_namespace: str
) -> Iterator[Net]:
    """A /29 Subnet (five addresses, .2 .. .6) for NAD ``net``."""
    cluster, ns = Cluster(control_plane.api_client()), kube_namespace
    octet = int(uuid.uuid4().hex[:4], 16) % 250
    prefix = f"10.61.{octet}"
    provider = cluster.ipam_network(ns, f"{ns}-net", f"{prefix}.0/29")
    yield Net(cluster, ns, provider, f"{ns}-net", prefix)
    assert controller.alive(), controller.log_tail()


def test_a_reserved_address_goes_only_to_the_pod_that_names_the_vip(net: Net) -> None:
    vip = f"{net.ns}-v"
    status = net.vip(vip, v4ip=f"{net.prefix}.4", macAddress="02:00:00:00:aa:01")
    assert (status["v4ip"], status["mac"], status["pod"]) == (
        f"{net.prefix}.4",
        "02:00:00:00:aa:01",
        "",
    )
    ready = net.cluster.condition("vips", vip)
    assert (ready["status"], ready["reason"]) == ("True", "VipReserved")
    # Four addresses are left for everyone else; the fifth pod finds the Subnet full.
    others = set()
    for n in range(4):
        net.pod(f"p{n}")
        others.add(net.allocated(f"p{n}")[0])
    assert f"{net.prefix}.4" not in others
    net.pod("p4")
    net.refused("p4", "SubnetExhausted")
    net.pod("user", **{net.key("vip"): vip})
    assert net.allocated("user") == (f"{net.prefix}.4", "02:00:00:00:aa:01")
    net.vip_status(vip, lambda s: s.get("pod") == f"{net.ns}/user")


def test_a_vip_is_used_by_one_pod_at_a_time(net: Net) -> None:
    vip = f"{net.ns}-once"
    address = net.vip(vip)["v4ip"]
    net.pod("first", **{"ovn.kubernetes.io/vip": vip})  # Kube-OVN's own annotation
    assert net.allocated("first")[0] == address
    net.pod("second", **{net.key("vip"): vip})
    assert f"pod {net.ns}/first" in net.refused("second", "VipInUse")
    net.cluster.delete_pod(net.ns, "first")
    assert net.allocated("second")[0] == address  # woken by the release


def test_an_unknown_vip_is_refused(net: Net) -> None:
    net.pod("lost", **{net.key("vip"): f"{net.ns}-nosuch"})
    assert "does not exist" in net.refused("lost", "VipNotFound")


def test_a_vip_of_another_subnet_is_refused(net: Net) -> None:
    other = f"{net.ns}-elsewhere"
    net.cluster.create_subnet(
        other, provider=f"x.{net.ns}", cidrBlock=f"10.62.{net.prefix.rsplit('.', 1)[1]}.0/29"
    )
    vip = f"{net.ns}-far"
    net.cluster.create_vip(vip, subnet=other)
    net.vip_status(vip, lambda s: bool(s.get("v4ip")))
    net.pod("wrong", **{"ovn.kubernetes.io/vip": vip})
    assert other in net.refused("wrong", "VipSubnetMismatch")


def test_a_vip_in_use_is_deleted_only_after_its_pod(net: Net) -> None:
    vip = f"{net.ns}-held"
    address = net.vip(vip)["v4ip"]
    net.pod("holder", **{net.key("vip"): vip})
    net.allocated("holder")
    net.cluster.delete_cluster_object("vips", vip)
    event = net.cluster.wait_event("default", vip, "VipInUse")
    assert "deletion waits" in str(event.message)
    waiting = net.vip_status(
        vip, lambda s: any(c.get("reason") == "VipInUse" for c in s.get("conditions") or [])
    )
    assert waiting["v4ip"] == address
    net.cluster.delete_pod(net.ns, "holder")
    net.cluster.gone("vips", vip)
    # The address is free again: a pod without a Vip can get it.
    for n in range(5):
        net.pod(f"after{n}")
    got = {net.allocated(f"after{n}")[0] for n in range(5)}
    assert address in got


def test_a_vip_whose_address_is_taken_is_refused(net: Net) -> None:
    net.pod("squatter", **{net.key("ip_address"): f"{net.prefix}.5"})
    net.allocated("squatter")
    vip = f"{net.ns}-late"
    net.cluster.create_vip(vip, subnet=net.subnet, v4ip=f"{net.prefix}.5")
    event = net.cluster.wait_event("default", vip, "AddressInUse")
    assert event.type == "Warning"
    net.cluster.wait_condition("vips", vip, "False", "AddressInUse")
    assert (net.cluster.kubeovn("vips", vip) or {}).get("status", {}).get("v4ip") == ""
