"""IPPools as Kube-OVN has them, against a real kube-apiserver and etcd.

What a user sees: pods of a namespace bound to IPPools take their addresses
there (several pools per namespace); other pods never get a pool's address;
``ip_pool: <name>`` finds the pool's Subnet by itself; the pool's status
counts and lists its addresses in Kube-OVN's form with a Ready condition;
a pool that overlaps an older one, reaches outside its Subnet, or is named
but does not exist is refused with an Event and allocates nothing; the
apiserver refuses a change of ``spec.subnet``; a pool in use is not deleted
until its last address is released.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from kubernetes.client.exceptions import ApiException

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
    controller: ControllerProcess

    def pod(self, name: str, namespace: str | None = None, **annotations: str) -> None:
        ns = namespace or self.ns
        extra = {f"{self.provider}.kubernetes.io/{k}": v for k, v in annotations.items()}
        self.cluster.create_pod(ns, name, {NETWORKS: f"{self.ns}/net", **extra})

    def address(self, name: str, namespace: str | None = None) -> str:
        found = self.cluster.allocated(namespace or self.ns, name, self.provider)
        return found[f"{self.provider}.kubernetes.io/ip_address"]

    def refused(self, name: str, reason: str) -> str:
        event = self.cluster.wait_event(self.ns, name, reason)
        assert event.type == "Warning"
        annotations = self.cluster.annotations(self.ns, name)
        assert not any(k.endswith("/allocated") for k in annotations), annotations
        assert self.cluster.ip_object(f"{name}.{self.ns}.{self.provider}") is None
        return str(event.message)

    def pool_status(self, pool: str) -> dict[str, object]:
        return dict((self.cluster.kubeovn("ippools", pool) or {}).get("status") or {})

    def wait_pool_status(self, pool: str, **wanted: object) -> dict[str, object]:
        """The pool's status once it shows ``wanted`` (refreshed every 5 s and on changes)."""

        def probe() -> dict[str, object] | None:
            status = self.pool_status(pool)
            return status if all(status.get(k) == v for k, v in wanted.items()) else None

        return wait_for(f"IPPool {pool} status {wanted}", probe)


@pytest.fixture(scope="module")
def controller(control_plane: ControlPlane) -> Iterator[ControllerProcess]:
    yield from leading_controller(control_plane, "ippools")


@pytest.fixture
def net(
    control_plane: ControlPlane, controller: ControllerProcess, kube_namespace: str
) -> Iterator[Net]:
    """NAD ``net`` (provider ``net.<ns>``) and its Subnet 10.60.x.0/24 (x unique per test)."""
    cluster, ns = Cluster(control_plane.api_client()), kube_namespace
    octet = int(uuid.uuid4().hex[:4], 16) % 250
    subnet = f"{ns}-net"
    provider = cluster.ipam_network(ns, subnet, f"10.60.{octet}.0/24")
    yield Net(cluster, ns, provider, subnet, controller)
    assert controller.alive(), controller.log_tail()


def prefix(net: Net) -> str:
    cidr = str(net.cluster.subnet(net.subnet)["spec"]["cidrBlock"])
    return cidr.rsplit(".", 1)[0]


def test_a_bound_namespace_takes_its_pools_and_others_never_do(
    net: Net, control_plane: ControlPlane
) -> None:
    p = prefix(net)
    other = f"{net.ns}-other"
    net.cluster.core.create_namespace({"metadata": {"name": other}})
    try:
        net.cluster.create_ippool(
            f"{net.ns}-a", subnet=net.subnet, ips=[f"{p}.2"], namespaces=[net.ns]
        )
        net.cluster.create_ippool(
            f"{net.ns}-b", subnet=net.subnet, ips=[f"{p}.3..{p}.4"], namespaces=[net.ns]
        )
        net.cluster.wait_condition("ippools", f"{net.ns}-a", "True")
        net.cluster.wait_condition("ippools", f"{net.ns}-b", "True")
        # Another namespace, before and after: never a pool address.
        net.pod("stranger", other)
        assert net.address("stranger", other) not in {f"{p}.2", f"{p}.3", f"{p}.4"}
        taken = set()
        for n in range(3):
            net.pod(f"bound{n}")
            taken.add(net.address(f"bound{n}"))
        assert taken == {f"{p}.2", f"{p}.3", f"{p}.4"}
        net.pod("bound3")
        assert "no free address among" in net.refused("bound3", "PoolExhausted")
        status = net.wait_pool_status(f"{net.ns}-b", v4UsingIPs=2)
        assert status["v4AvailableIPs"] == 0
        assert status["v4UsingIPRange"] == f"{p}.3-{p}.4" and status["v4AvailableIPRange"] == ""
        used = net.controller.metric(
            "nicpool_ippool_addresses",
            f'family="4",ippool="{net.ns}-b",state="used",subnet="{net.subnet}"',
        )
        assert used == 2.0
    finally:
        net.cluster.core.delete_namespace(other)


def test_ip_pool_by_name_finds_its_subnet_and_status_counts_it(net: Net) -> None:
    p = prefix(net)
    pool = f"{net.ns}-named"
    net.cluster.create_ippool(pool, subnet=net.subnet, ips=[f"{p}.100/30"])
    net.cluster.wait_condition("ippools", pool, "True")
    # logical_switch is not given: the pool names the Subnet.
    net.pod("named", ip_pool=pool)
    got = net.address("named")
    assert got in {f"{p}.{n}" for n in range(100, 104)}

    status = net.wait_pool_status(pool, v4UsingIPs=1)
    assert status["v4AvailableIPs"] == 3 and status["v4UsingIPRange"] == got


@pytest.mark.parametrize(
    ("ips", "reason"),
    [
        (["{p}.10..{p}.12"], "IPPoolOverlap"),  # the older pool has .10 .. .20
        (["{p}.250..10.99.0.3"], "IPPoolOutsideSubnet"),
        (["fd00::5"], "IPPoolOutsideSubnet"),
    ],
)
def test_a_refused_pool_has_an_event_and_a_condition_and_allocates_nothing(
    net: Net, ips: list[str], reason: str
) -> None:
    p = prefix(net)
    older, bad = f"{net.ns}-older", f"{net.ns}-bad"
    net.cluster.create_ippool(older, subnet=net.subnet, ips=[f"{p}.10..{p}.20"])
    net.cluster.wait_condition("ippools", older, "True")
    net.cluster.create_ippool(bad, subnet=net.subnet, ips=[i.format(p=p) for i in ips])
    event = net.cluster.wait_event("default", bad, reason)
    assert event.type == "Warning"
    net.cluster.wait_condition("ippools", bad, "False", reason)
    assert net.cluster.condition("ippools", bad, "Error")["status"] == "True"
    net.pod("user", ip_pool=bad)
    assert bad in net.refused("user", "IPPoolNotReady")
    assert net.cluster.condition("ippools", older).get("status") == "True"  # the older one stays


def test_an_unknown_pool_name_is_refused(net: Net) -> None:
    net.pod("lost", ip_pool=f"{net.ns}-nosuch")
    assert "does not exist" in net.refused("lost", "IPPoolNotFound")


def test_the_apiserver_refuses_a_change_of_the_pool_subnet(net: Net) -> None:
    pool = f"{net.ns}-fixed"
    net.cluster.create_ippool(pool, subnet=net.subnet, ips=[f"{prefix(net)}.30"])
    with pytest.raises(ApiException) as caught:
        net.cluster.custom.patch_cluster_custom_object(
            "kubeovn.io", "v1", "ippools", pool, {"spec": {"subnet": "elsewhere"}}
        )
    assert caught.value.status == 422 and "spec.subnet is immutable" in str(caught.value.body)
    assert (net.cluster.kubeovn("ippools", pool) or {})["spec"]["subnet"] == net.subnet


def test_a_pool_in_use_waits_for_its_last_address(net: Net) -> None:
    pool = f"{net.ns}-held"
    net.cluster.create_ippool(pool, subnet=net.subnet, ips=[f"{prefix(net)}.40"])
    net.cluster.wait_condition("ippools", pool, "True")
    net.pod("holder", ip_pool=pool)
    net.address("holder")
    net.cluster.delete_cluster_object("ippools", pool)
    event = net.cluster.wait_event("default", pool, "IPPoolInUse")
    assert "1 leased" in str(event.message)
    net.cluster.wait_condition("ippools", pool, "False", "IPPoolInUse")
    assert net.cluster.kubeovn("ippools", pool) is not None
    net.pod("late", ip_pool=pool)
    net.refused("late", "IPPoolDeleting")  # nothing new from a pool being deleted
    net.cluster.delete_pod(net.ns, "holder")
    net.cluster.gone("ippools", pool)
