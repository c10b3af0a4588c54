"""Kube-OVN v1.16's per-interface annotations through the controller (issue 11).

A NAD attached twice keys each NIC's fixed address and MAC as
``<nad>.<ns>.kubernetes.io/ip_address.<ifname>`` / ``mac_address.<ifname>``;
nicpool reads that form first, still reads its own ``<provider>.<ifname>``
form, and writes what Kube-OVN writes: ``<provider>.<ifname>.kubernetes.io/*``.
One controller process for the module, a namespace per test.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from ops.lab.cluster import Cluster
from ops.lab.controllers import ControllerProcess, wait_for
from ops.lab.kube import ControlPlane
from tests.controller.conftest import leading_controller

pytestmark = pytest.mark.controller
NETWORKS = "k8s.v1.cni.cncf.io/networks"


@pytest.fixture(scope="module")
def controller(control_plane: ControlPlane) -> Iterator[ControllerProcess]:
    yield from leading_controller(control_plane, "ifaces")


@pytest.fixture
def red(
    control_plane: ControlPlane, controller: ControllerProcess, kube_namespace: str
) -> Iterator[tuple[Cluster, str, str]]:
    """A macvlan NAD ``red`` with kube-ovn IPAM and its /24; yields (cluster, ns, provider)."""
    cluster, ns = Cluster(control_plane.api_client()), kube_namespace
    provider = f"red.{ns}"
    config = {"type": "macvlan", "ipam": {"type": "kube-ovn", "provider": provider}}
    cluster.create_nad(ns, "red", json.dumps(config))
    cluster.create_subnet(f"{ns}-red", provider=provider, cidrBlock="10.97.0.0/24")
    yield cluster, ns, provider
    cluster.delete_cluster_object("subnets", f"{ns}-red")
    assert controller.alive(), controller.log_tail()


def key(provider: str, suffix: str) -> str:
    return f"{provider}.kubernetes.io/{suffix}"


def test_each_nic_of_a_nad_attached_twice_takes_its_per_interface_address_and_mac(
    red: tuple[Cluster, str, str],
) -> None:
    cluster, ns, provider = red
    given = {
        NETWORKS: f"{ns}/red@m1,{ns}/red@m2",
        f"red.{ns}.kubernetes.io/ip_address.m1": "10.97.0.31",
        f"red.{ns}.kubernetes.io/mac_address.m1": "0A:00:00:00:00:31",
        f"red.{ns}.kubernetes.io/ip_address.m2": "10.97.0.32",
    }
    cluster.create_pod(ns, "twice", given)
    cluster.allocated(ns, "twice", f"{provider}.m1")
    got = cluster.allocated(ns, "twice", f"{provider}.m2")
    # Written as Kube-OVN writes a NIC of a NAD attached twice: under <provider>.<if>.
    assert got[key(f"{provider}.m1", "ip_address")] == "10.97.0.31"
    assert got[key(f"{provider}.m1", "mac_address")] == "0a:00:00:00:00:31"
    assert got[key(f"{provider}.m2", "ip_address")] == "10.97.0.32"
    assert got[key(f"{provider}.m2", "cidr")] == "10.97.0.0/24"
    # No MAC asked for m2: a random locally administered unicast one, written.
    assert int(got[key(f"{provider}.m2", "mac_address")][:2], 16) & 0b11 == 0b10
    # The inputs are left as the user wrote them; nothing is written under the NAD alone.
    assert got[f"red.{ns}.kubernetes.io/mac_address.m1"] == "0A:00:00:00:00:31"
    assert key(provider, "ip_address") not in got
    # Written after the annotations (and after the IP objects' list on a new leader).
    ip_object = wait_for("m1's IP object", lambda: cluster.ip_object(f"twice.{ns}.{provider}.m1"))
    assert ip_object["spec"]["ipAddress"] == "10.97.0.31"


def test_the_per_interface_form_wins_and_the_older_form_is_still_read(
    red: tuple[Cluster, str, str],
) -> None:
    cluster, ns, provider = red
    given = {
        NETWORKS: f"{ns}/red@m1,{ns}/red@m2",
        f"red.{ns}.kubernetes.io/ip_address.m1": "10.97.0.41",
        key(f"{provider}.m1", "ip_address"): "10.97.0.51",  # loses to the line above
        key(f"{provider}.m2", "ip_address"): "10.97.0.52",  # nicpool's form, still read
    }
    cluster.create_pod(ns, "both", given)
    cluster.allocated(ns, "both", f"{provider}.m1")
    got = cluster.allocated(ns, "both", f"{provider}.m2")
    assert got[key(f"{provider}.m1", "ip_address")] == "10.97.0.41"
    assert got[key(f"{provider}.m2", "ip_address")] == "10.97.0.52"


@pytest.mark.parametrize(
    ("suffix", "value", "reason"),
    [
        ("ip_address.m2", "10.98.0.5", "AddressOutsideSubnet"),
        ("ip_address.m2", "not-an-ip", "InvalidAddress"),
        ("mac_address.m2", "ff:ff:ff:ff:ff:ff", "InvalidMac"),
    ],
)
def test_a_bad_per_interface_value_allocates_nothing_and_says_why(
    red: tuple[Cluster, str, str], suffix: str, value: str, reason: str
) -> None:
    cluster, ns, provider = red
    annotation = f"red.{ns}.kubernetes.io/{suffix}"
    cluster.create_pod(ns, "bad", {NETWORKS: f"{ns}/red@m1,{ns}/red@m2", annotation: value})
    event = cluster.wait_event(ns, "bad", reason)
    assert annotation in event.message
    written = cluster.annotations(ns, "bad")
    assert not any(k.endswith(".kubernetes.io/allocated") for k in written)
    assert cluster.ip_object(f"bad.{ns}.{provider}.m1") is None
