"""The reference document's YAML, applied as written, gives the annotations it describes.

Each example of ``ops/examples`` (the seed document, verbatim) is applied to
a real kube-apiserver (+ controller-manager, so Deployments make pods) with
one nicpool-controller process running. The document reuses names across
alternatives (Subnet ``macvlan`` with two providers, pod ``samplepod`` four
times), so this module runs on a control plane of its own and each test
removes what it applied.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

import pytest

from ops.lab.cluster import EXAMPLES, Cluster
from ops.lab.controllers import ControllerProcess, wait_for
from ops.lab.kube import ControlPlane
from tests.controller.conftest import leading_controller, started_control_plane

pytestmark = pytest.mark.controller

MACVLAN = "macvlan.default"
ATTACHNET = "attachnet.default.ovn"


@pytest.fixture(scope="module")
def plane() -> Iterator[ControlPlane]:
    yield from started_control_plane()


@pytest.fixture(scope="module")
def controller(plane: ControlPlane) -> Iterator[ControllerProcess]:
    yield from leading_controller(plane, "seed", "--gc-interval=2", "--gc-grace=2")


@pytest.fixture
def cluster(plane: ControlPlane, controller: ControllerProcess) -> Iterator[Cluster]:
    kube = Cluster(plane.api_client())
    yield kube
    if not controller.alive():
        pytest.fail(f"controller died:\n{controller.log_tail()}")
    # Undo whatever the test applied: workloads and pods first (their leases go), then
    # subnets, whose registration the controller removes once they hold no lease.
    for deploy in kube.apps.list_namespaced_deployment("default").items:
        kube.apps.delete_namespaced_deployment(deploy.metadata.name, "default")
    wait_for("deployment pods gone", lambda: not kube.pods("default", "app"), 90)
    for pod in kube.core.list_namespaced_pod("default").items:
        kube.delete_pod("default", pod.metadata.name)
    wait_for(
        "IP objects released",
        lambda: not kube.custom.list_cluster_custom_object("kubeovn.io", "v1", "ips")["items"],
        60,
    )
    # The next test applies the same Subnet names: an apply that lands while the old
    # object still waits for its finalizer updates the dying object, which then goes.
    for subnet in kube.custom.list_cluster_custom_object("kubeovn.io", "v1", "subnets")["items"]:
        kube.delete_cluster_object("subnets", subnet["metadata"]["name"])
        kube.gone("subnets", subnet["metadata"]["name"])


def apply(plane: ControlPlane, *numbers: str) -> None:
    for number in numbers:
        (path,) = EXAMPLES.glob(f"{number}-*.yaml")
        plane.apply_yaml(path)


def in_subnet(address: str, cidr: str) -> bool:
    return ipaddress.ip_address(address) in ipaddress.ip_network(cidr)


def test_random_address_pod_gets_kube_ovn_annotations_ip_object_and_status(
    plane: ControlPlane, cluster: Cluster
) -> None:
    apply(plane, "02", "03", "04")
    got = cluster.allocated("default", "samplepod", MACVLAN)
    ip = got[f"{MACVLAN}.kubernetes.io/ip_address"]
    assert in_subnet(ip, "172.17.0.0/16")
    assert ipaddress.ip_address(ip) > ipaddress.ip_address("172.17.0.10")  # excludeIps honoured
    assert got[f"{MACVLAN}.kubernetes.io/cidr"] == "172.17.0.0/16"
    assert got[f"{MACVLAN}.kubernetes.io/gateway"] == "172.17.0.1"
    assert len(got[f"{MACVLAN}.kubernetes.io/mac_address"].split(":")) == 6
    assert f"{MACVLAN}.kubernetes.io/logical_switch" not in got  # not an ovn-type subnet
    ip_object = wait_for("IP object", lambda: cluster.ip_object(f"samplepod.default.{MACVLAN}"))
    assert ip_object["spec"]["ipAddress"] == ip and ip_object["spec"]["subnet"] == "macvlan"
    status = wait_for(
        "subnet status", lambda: cluster.subnet("macvlan").get("status", {}).get("v4usingIPs")
    )
    assert status == 1


def test_fixed_ip_and_mac_are_honoured_and_the_primary_cni_keys_left_alone(
    plane: ControlPlane, cluster: Cluster
) -> None:
    apply(plane, "02", "03", "05")
    got = cluster.allocated("default", "static-ip", MACVLAN)
    assert got[f"{MACVLAN}.kubernetes.io/ip_address"] == "172.17.0.100"
    assert got[f"{MACVLAN}.kubernetes.io/mac_address"] == "00:00:00:53:6b:bb"
    assert got["ovn.kubernetes.io/ip_address"] == "10.16.0.15"
    assert got["ovn.kubernetes.io/mac_address"] == "00:00:00:53:6B:B6"
    assert "ovn.kubernetes.io/allocated" not in got


def test_deployment_pool_addresses_are_used_and_distinct(
    plane: ControlPlane, cluster: Cluster
) -> None:
    apply(plane, "02", "03", "06")
    pods = wait_for(
        "2 pods",
        lambda: (p := cluster.pods("default", "app=static-workload")) and len(p) == 2 and p,
        90,
    )
    addresses = [
        cluster.allocated("default", p.metadata.name, MACVLAN)[
            f"{MACVLAN}.kubernetes.io/ip_address"
        ]
        for p in pods
    ]
    assert len(set(addresses)) == 2
    assert set(addresses) <= {"172.17.0.200", "172.17.0.201", "172.17.0.202"}


def test_default_route_pod_and_default_network_pod(plane: ControlPlane, cluster: Cluster) -> None:
    apply(plane, "02", "03", "07", "08")
    routed = cluster.allocated("default", "samplepod-route", MACVLAN)
    main = cluster.allocated("default", "samplepod-macvlan", MACVLAN)
    assert (
        routed[f"{MACVLAN}.kubernetes.io/ip_address"] != main[f"{MACVLAN}.kubernetes.io/ip_address"]
    )


def test_logical_switch_picks_a_provider_ovn_subnet(plane: ControlPlane, cluster: Cluster) -> None:
    apply(plane, "02", "09", "10")
    got = cluster.allocated("default", "samplepod", MACVLAN)
    assert got[f"{MACVLAN}.kubernetes.io/logical_switch"] == "macvlan"
    assert in_subnet(got[f"{MACVLAN}.kubernetes.io/ip_address"], "172.17.0.0/16")
    assert not any(k.startswith("ovn.kubernetes.io/") for k in got)


def test_kube_ovn_attachment_nic(plane: ControlPlane, cluster: Cluster) -> None:
    apply(plane, "11", "12", "13")
    got = cluster.allocated("default", "samplepod", ATTACHNET)
    assert in_subnet(got[f"{ATTACHNET}.kubernetes.io/ip_address"], "172.17.0.0/16")
    assert got[f"{ATTACHNET}.kubernetes.io/logical_switch"] == "attachnet"


def test_custom_routes_pod_and_deployment(plane: ControlPlane, cluster: Cluster) -> None:
    apply(plane, "11", "12", "14", "15")
    got = cluster.allocated("default", "custom-routes-attach", ATTACHNET)
    assert '"gw": "172.17.0.254"' in got[f"{ATTACHNET}.kubernetes.io/routes"]
    pods = wait_for(
        "2 pods", lambda: (p := cluster.pods("default", "app=nginx")) and len(p) == 2 and p, 90
    )
    for pod in pods:
        assert cluster.allocated("default", pod.metadata.name, ATTACHNET)


def test_attachment_nic_on_a_provider_ovn_subnet(plane: ControlPlane, cluster: Cluster) -> None:
    apply(plane, "11", "16", "17")
    got = cluster.allocated("default", "samplepod", ATTACHNET)
    assert got[f"{ATTACHNET}.kubernetes.io/logical_switch"] == "attachnet"


def test_empty_spec_nad_is_reported_and_nothing_allocated(
    plane: ControlPlane, cluster: Cluster
) -> None:
    apply(plane, "01", "03")
    cluster.create_pod(
        "default", "uses-empty-nad", {"k8s.v1.cni.cncf.io/networks": "default/macvlan-conf-2"}
    )
    event = cluster.wait_event("default", "uses-empty-nad", "NoProvider")
    assert "empty spec" in event.message
    assert not any(
        k.endswith("/allocated") for k in cluster.annotations("default", "uses-empty-nad")
    )
