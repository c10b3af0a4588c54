"""The controller against a real apiserver: address families, several NICs, StatefulSets.

One nicpool-controller process for the module; every test works in a
namespace of its own with Subnets named after it, so providers
(``<nad>.<namespace>``) never collide.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator

import pytest

from ops.lab.cluster import Cluster
from ops.lab.controllers import ControllerProcess, wait_for
from ops.lab.examples import seed_nad_config
from ops.lab.kube import ControlPlane
from tests.controller.conftest import leading_controller

pytestmark = pytest.mark.controller
NETWORKS = "k8s.v1.cni.cncf.io/networks"


@pytest.fixture(scope="module")
def controller(control_plane: ControlPlane) -> Iterator[ControllerProcess]:
    yield from leading_controller(control_plane, "alloc", "--gc-interval=1", "--gc-grace=1")


@pytest.fixture
def cluster(control_plane: ControlPlane, controller: ControllerProcess) -> Iterator[Cluster]:
    yield Cluster(control_plane.api_client())
    assert controller.alive(), controller.log_tail()


def ipam_nad(cluster: Cluster, ns: str, name: str) -> str:
    """A macvlan NAD using kube-ovn IPAM; returns its provider."""
    provider = f"{name}.{ns}"
    config = seed_nad_config(ipam={"provider": provider})
    cluster.create_nad(ns, name, json.dumps(config))
    return provider


def key(provider: str, suffix: str) -> str:
    return f"{provider}.kubernetes.io/{suffix}"


def test_dual_stack_pod_gets_one_address_per_family(cluster: Cluster, kube_namespace: str) -> None:
    ns = kube_namespace
    provider = ipam_nad(cluster, ns, "dual")
    cluster.create_subnet(
        f"{ns}-dual",
        provider=provider,
        protocol="Dual",
        cidrBlock="10.61.0.0/24,fd00:61::/120",
        gateway="10.61.0.1,fd00:61::1",
    )
    cluster.create_pod(
        ns, "p", {NETWORKS: f"{ns}/dual", key(provider, "ip_address"): "10.61.0.7,fd00:61::7"}
    )
    cluster.create_pod(ns, "q", {NETWORKS: f"{ns}/dual"})
    fixed = cluster.allocated(ns, "p", provider)
    assert fixed[key(provider, "ip_address")] == "10.61.0.7,fd00:61::7"
    assert fixed[key(provider, "cidr")] == "10.61.0.0/24,fd00:61::/120"
    assert fixed[key(provider, "gateway")] == "10.61.0.1,fd00:61::1"
    v4, v6 = cluster.allocated(ns, "q", provider)[key(provider, "ip_address")].split(",")
    assert ipaddress.ip_address(v4) in ipaddress.ip_network("10.61.0.0/24")
    assert ipaddress.ip_address(v6) in ipaddress.ip_network("fd00:61::/120")
    status = wait_for(
        "status",
        lambda: (s := cluster.subnet(f"{ns}-dual").get("status", {})).get("v6usingIPs") == 2 and s,
    )
    assert status["v4usingIPs"] == 2


def test_ipv6_only_subnet(cluster: Cluster, kube_namespace: str) -> None:
    ns = kube_namespace
    provider = ipam_nad(cluster, ns, "six")
    cluster.create_subnet(
        f"{ns}-six",
        provider=provider,
        protocol="IPv6",
        cidrBlock="fd00:62::/64",
        gateway="fd00:62::1",
    )
    cluster.create_pod(ns, "p", {NETWORKS: f"{ns}/six"})
    got = cluster.allocated(ns, "p", provider)
    assert ipaddress.ip_address(got[key(provider, "ip_address")]).version == 6
    assert got[key(provider, "gateway")] == "fd00:62::1"


def test_two_nics_on_two_subnets_and_the_same_nad_twice(
    cluster: Cluster, kube_namespace: str
) -> None:
    ns = kube_namespace
    red, blue = ipam_nad(cluster, ns, "red"), ipam_nad(cluster, ns, "blue")
    cluster.create_subnet(f"{ns}-red", provider=red, cidrBlock="10.63.0.0/24")
    cluster.create_subnet(f"{ns}-blue", provider=blue, cidrBlock="10.64.0.0/24")
    cluster.create_pod(ns, "two", {NETWORKS: f"{ns}/red,{ns}/blue"})
    got = cluster.allocated(ns, "two", red)
    cluster.allocated(ns, "two", blue)
    assert got[key(red, "ip_address")].startswith("10.63.0.")
    assert cluster.annotations(ns, "two")[key(blue, "ip_address")].startswith("10.64.0.")
    # The same NAD twice: one lease and one set of annotations per interface.
    cluster.create_pod(ns, "twice", {NETWORKS: f"{ns}/red@m1,{ns}/red@m2"})
    first = cluster.allocated(ns, "twice", f"{red}.m1")
    second = cluster.allocated(ns, "twice", f"{red}.m2")
    assert first[key(f"{red}.m1", "ip_address")] != second[key(f"{red}.m2", "ip_address")]


def test_statefulset_keeps_addresses_and_scale_down_frees_them(
    cluster: Cluster, kube_namespace: str
) -> None:
    ns = kube_namespace
    provider = ipam_nad(cluster, ns, "sts")
    cluster.create_subnet(f"{ns}-sts", provider=provider, cidrBlock="10.65.0.0/24")
    template_annotations = {
        NETWORKS: f"{ns}/sts",
        key(provider, "ip_pool"): "10.65.0.50,10.65.0.51,10.65.0.52",
    }
    body = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "web", "namespace": ns},
        "spec": {
            "replicas": 3,
            "serviceName": "web",
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}, "annotations": template_annotations},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            },
        },
    }
    cluster.apps.create_namespaced_stateful_set(ns, body)
    wait_for("3 pods", lambda: len(cluster.pods(ns, "app=web")) == 3, 90)
    for ordinal in range(3):
        got = cluster.allocated(ns, f"web-{ordinal}", provider)
        assert got[key(provider, "ip_address")] == f"10.65.0.5{ordinal}"
    old_uid = cluster.core.read_namespaced_pod("web-1", ns).metadata.uid
    cluster.core.delete_namespaced_pod("web-1", ns, grace_period_seconds=0)

    def recreated() -> dict[str, str] | None:
        try:
            pod = cluster.core.read_namespaced_pod("web-1", ns)
        except Exception:
            return None
        if pod.metadata.uid == old_uid:
            return None
        found = dict(pod.metadata.annotations or {})
        return found if found.get(key(provider, "allocated")) == "true" else None

    again = wait_for("web-1 recreated and allocated", recreated, 90)
    assert again[key(provider, "ip_address")] == "10.65.0.51"
    cluster.apps.patch_namespaced_stateful_set("web", ns, {"spec": {"replicas": 1}})
    wait_for("scaled down", lambda: len(cluster.pods(ns, "app=web")) == 1, 90)
    wait_for(
        "web-1 and web-2 leases freed",
        lambda: (
            cluster.ip_object(f"web-2.{ns}.{provider}") is None
            and cluster.ip_object(f"web-1.{ns}.{provider}") is None
        ),
        60,
    )
    assert cluster.ip_object(f"web-0.{ns}.{provider}") is not None
    status = wait_for(
        "status shows 1 used",
        lambda: cluster.subnet(f"{ns}-sts").get("status", {}).get("v4usingIPs") == 1,
    )
    assert status


def test_deleting_a_pod_frees_its_address_for_the_next(
    cluster: Cluster, kube_namespace: str
) -> None:
    ns = kube_namespace
    provider = ipam_nad(cluster, ns, "tiny")
    cluster.create_subnet(f"{ns}-tiny", provider=provider, cidrBlock="10.66.0.0/30")
    cluster.create_pod(ns, "first", {NETWORKS: f"{ns}/tiny"})
    taken = cluster.allocated(ns, "first", provider)[key(provider, "ip_address")]
    cluster.delete_pod(ns, "first")
    cluster.create_pod(ns, "second", {NETWORKS: f"{ns}/tiny", key(provider, "ip_address"): taken})
    assert cluster.allocated(ns, "second", provider)[key(provider, "ip_address")] == taken
