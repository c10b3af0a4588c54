"""The cool-down through the controller: who waits for a freed address, and who does not.

Real apiserver and etcd, the production controller in this process (its
refusal backoff set to an hour, so "allocated" can only come from the retry
scheduled for the end of the cool-down, never from that backoff).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from ops.lab.cluster import Cluster
from ops.lab.kube import ControlPlane
from tests.controller.inprocess import InProcessController, start_controller

pytestmark = pytest.mark.controller

NETWORKS = "k8s.v1.cni.cncf.io/networks"


def small_subnet(cluster: Cluster, ns: str) -> str:
    """A NAD and a /29 Subnet (five addresses: .2 .. .6); returns the provider."""
    provider = f"net.{ns}"
    config = {"type": "macvlan", "ipam": {"type": "kube-ovn", "provider": provider}}
    cluster.create_nad(ns, "net", json.dumps(config))
    cluster.create_subnet(f"{ns}-cool", provider=provider, cidrBlock="10.96.0.0/29")
    return provider


@pytest.fixture
def cluster(control_plane: ControlPlane, kube_namespace: str) -> Iterator[Cluster]:
    cluster = Cluster(control_plane.api_client())
    yield cluster
    cluster.delete_cluster_object("subnets", f"{kube_namespace}-cool")


def controller(plane: ControlPlane, cooldown: float) -> InProcessController:
    return start_controller(plane, refusal_base=3600.0, address_cooldown=cooldown)


def fill(cluster: Cluster, ns: str, provider: str) -> dict[str, str]:
    """Five pods p0 .. p4 holding every address; pod name -> address."""
    held = {}
    for n in range(5):
        cluster.create_pod(ns, f"p{n}", {NETWORKS: f"{ns}/net"})
        got = cluster.allocated(ns, f"p{n}", provider)
        held[f"p{n}"] = got[f"{provider}.kubernetes.io/ip_address"]
    return held


def test_a_pod_waiting_for_a_freed_address_gets_it_once_it_has_cooled(
    control_plane: ControlPlane, cluster: Cluster, kube_namespace: str
) -> None:
    ns = kube_namespace
    provider = small_subnet(cluster, ns)
    running = controller(control_plane, cooldown=15.0)  # outlasts a slow delete and create
    try:
        held = fill(cluster, ns, provider)
        cluster.delete_pod(ns, "p2")
        cluster.create_pod(ns, "next", {NETWORKS: f"{ns}/net"})
        waiting = cluster.wait_event(ns, "next", "AddressesCoolingDown")
        assert waiting.type == "Normal"
        assert "cool-down" in waiting.message
        got = cluster.allocated(ns, "next", provider)  # long before its hour of backoff
        assert got[f"{provider}.kubernetes.io/ip_address"] == held["p2"]
    finally:
        running.stop()


@pytest.mark.parametrize("annotation", ["ip_address", "ip_pool"])
def test_a_named_address_is_handed_out_at_once_while_dynamic_pods_wait(
    control_plane: ControlPlane, cluster: Cluster, kube_namespace: str, annotation: str
) -> None:
    """A static pod recreated with its address (or a pool entry) never waits, as in
    Kube-OVN; a pod asking for any address waits out the cool-down."""
    ns = kube_namespace
    provider = small_subnet(cluster, ns)
    running = controller(control_plane, cooldown=600.0)  # far longer than any wait below
    try:
        held = fill(cluster, ns, provider)
        cluster.delete_pod(ns, "p3")
        cluster.create_pod(ns, "dynamic", {NETWORKS: f"{ns}/net"})
        cluster.wait_event(ns, "dynamic", "AddressesCoolingDown")
        named = {NETWORKS: f"{ns}/net", f"{provider}.kubernetes.io/{annotation}": held["p3"]}
        cluster.create_pod(ns, "named", named)
        got = cluster.allocated(ns, "named", provider)
        assert got[f"{provider}.kubernetes.io/ip_address"] == held["p3"]
        assert f"{provider}.kubernetes.io/allocated" not in cluster.annotations(ns, "dynamic")
    finally:
        running.stop()


def test_no_cool_down_hands_a_freed_address_to_the_next_pod(
    control_plane: ControlPlane, cluster: Cluster, kube_namespace: str
) -> None:
    ns = kube_namespace
    provider = small_subnet(cluster, ns)
    running = controller(control_plane, cooldown=0.0)
    try:
        held = fill(cluster, ns, provider)
        cluster.delete_pod(ns, "p1")
        cluster.create_pod(ns, "next", {NETWORKS: f"{ns}/net"})
        got = cluster.allocated(ns, "next", provider)
        assert got[f"{provider}.kubernetes.io/ip_address"] == held["p1"]
        reasons = {event.reason for event in cluster.events(ns, "next")}
        assert "AddressesCoolingDown" not in reasons
    finally:
        running.stop()
