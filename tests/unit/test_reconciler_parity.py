"""Kube-OVN parity in the pure core: namespace IPPools, Vips, the overlap rule, conditions,
status ranges.

Table-driven over plain values; what each case pins is what a user would
see: which addresses a NIC may get, which object is refused and why.
"""

from __future__ import annotations

import json

import pytest

from reconciler.core.conditions import Verdict, condition, merged
from reconciler.core.errors import (
    IPPoolNamespaceMismatch,
    IPPoolOutsideSubnet,
    IPPoolOverlap,
    IPPoolRefused,
    IPPoolSubnetNotFound,
    SubnetOverlap,
    VipNamespaceMismatch,
    VipNoNic,
    VipNotFound,
)
from reconciler.core.ippools import IPPoolView, ippool_from_object, pool_offsets
from reconciler.core.overlaps import refused_pools, refused_subnets
from reconciler.core.planning import PodView, World, plan_pod
from reconciler.core.subnets import SubnetView, subnet_from_object
from reconciler.core.vips import VipView, vip_from_object
from store.core.bitmap import Chunk
from store.core.identity import PodUID, SubnetName
from store.core.ranges import Ranges
from store.core.rangetext import range_text
from store.core.usage import family_occupancy, leased_ranges
from store.errors import PoolExhausted, VipNotReserved

pytestmark = pytest.mark.unit
NETWORKS = "k8s.v1.cni.cncf.io/networks"
NAD = json.dumps({"type": "macvlan", "ipam": {"type": "kube-ovn", "provider": "net.ns"}})


def subnet(
    name: str, cidr: str, provider: str = "net.ns", created: str = "t1", **spec: object
) -> SubnetView:
    meta = {"creationTimestamp": created}
    return subnet_from_object(name, {"provider": provider, "cidrBlock": cidr, **spec}, meta)


def pool(
    name: str, ips: list[str], subnet_name: str = "net", *, created: str = "t1", **spec: object
) -> IPPoolView:
    body = {"subnet": subnet_name, "ips": ips, **spec}
    return ippool_from_object(name, body, {"creationTimestamp": created})


def world(pools: list[IPPoolView] = (), vips: list[VipView] = (), **subnets: SubnetView) -> World:  # type: ignore[assignment]
    found = {
        SubnetName(k): v for k, v in (subnets or {"net": subnet("net", "10.0.0.0/24")}).items()
    }
    by_name = {p.name: p for p in pools}
    return World(
        nads={"ns/net": NAD},
        subnets=found,
        ippools=by_name,
        refused_pools=refused_pools(by_name, found),
        vips={v.name: v for v in vips},
    )


def pod(namespace: str = "ns", **annotations: str) -> PodView:
    return PodView(namespace, "p", PodUID("u"), {NETWORKS: "ns/net", **annotations})


def vip(name: str = "v", *, reserved: bool = True, **spec: object) -> VipView:
    status = {"v4ip": "10.0.0.9"} if reserved else {}
    obj = {
        "metadata": {"name": name, "uid": "vu"},
        "spec": {"subnet": "net", **spec},
        "status": status,
    }
    return vip_from_object(obj)


# -- namespace IPPools ---------------------------------------------------------


def test_a_bound_namespace_takes_its_pools_by_default_in_name_order() -> None:
    pools = [
        pool("b", ["10.0.0.20"], namespaces=["ns"]),
        pool("a", ["10.0.0.10..10.0.0.11"], namespaces=["ns", "other"]),
        pool("c", ["10.0.0.30"], namespaces=["other"]),
    ]
    (nic,) = plan_pod(pod(), world(pools)).nics
    assert nic.request.pool == (("10.0.0.10",), ("10.0.0.11",), ("10.0.0.20",))


def test_an_unbound_namespace_gets_the_next_free_address() -> None:
    (nic,) = plan_pod(pod("free"), world([pool("a", ["10.0.0.10"], namespaces=["ns"])])).nics
    assert nic.request.pool == () and nic.fixed_ips == ()


def test_a_pool_of_other_namespaces_is_refused_by_name() -> None:
    plan = plan_pod(
        pod("x", **{"net.ns.kubernetes.io/ip_pool": "a"}),
        world([pool("a", ["10.0.0.10"], namespaces=["ns"])]),
    )
    assert [type(e) for e in plan.errors] == [IPPoolNamespaceMismatch]


def test_a_refused_pool_is_named_in_the_refusal() -> None:
    pools = [pool("old", ["10.0.0.10..10.0.0.20"]), pool("new", ["10.0.0.15"], created="t2")]
    plan = plan_pod(pod(**{"net.ns.kubernetes.io/ip_pool": "new"}), world(pools))
    assert [type(e) for e in plan.errors] == [IPPoolRefused]
    assert "10.0.0.15" in str(plan.errors[0]) and "old" in str(plan.errors[0])


def test_ip_pool_by_name_implies_the_pool_subnet() -> None:
    subnets = {
        "net": subnet("net", "10.0.0.0/24"),
        "other": subnet("other", "10.1.0.0/24", provider="x"),
    }
    plan = plan_pod(
        pod(**{"net.ns.kubernetes.io/ip_pool": "p"}),
        world([pool("p", ["10.1.0.5"], "other")], **subnets),
    )
    assert (
        plan.ok and plan.nics[0].subnet == "other" and plan.nics[0].request.pool == (("10.1.0.5",),)
    )


def test_a_deleting_pool_blocks_new_addresses_without_refusing_the_plan() -> None:
    deleting = pool("a", ["10.0.0.10"])
    deleting = IPPoolView(**{**deleting.__dict__, "deleting": True})
    plan = plan_pod(pod(**{"net.ns.kubernetes.io/ip_pool": "a"}), world([deleting]))
    assert plan.ok and plan.nics[0].blocked is not None
    assert plan.nics[0].blocked.reason == "IPPoolDeleting"


# -- pools against their Subnet and each other ----------------------------------------


@pytest.mark.parametrize(
    ("pools", "refused"),
    [
        (
            [pool("a", ["10.0.0.10/29"]), pool("b", ["10.0.0.12"], created="t2")],
            {"b": IPPoolOverlap},
        ),
        ([pool("a", ["10.0.0.250..10.0.1.5"])], {"a": IPPoolOutsideSubnet}),
        ([pool("a", ["fd00::5"])], {"a": IPPoolOutsideSubnet}),
        ([pool("a", ["10.0.0.5"], "nosuch")], {"a": IPPoolSubnetNotFound}),
        ([pool("a", ["10.0.0.5"]), pool("b", ["10.0.0.6"])], {}),
    ],
)
def test_pools_are_refused_for_overlap_outside_or_no_subnet(
    pools: list[IPPoolView], refused: dict[str, type]
) -> None:
    found = refused_pools({p.name: p for p in pools}, world().subnets)
    assert {name: type(err) for name, err in found.items()} == refused


def test_pool_offsets_are_ranges_never_walked() -> None:
    layout = subnet("v6", "fd00::/64").layouts[0]
    offsets = pool_offsets(pool("big", ["fd00::/65", "10.0.0.1"], "v6"), layout)
    assert offsets.pairs == ((0, 2**63 - 1),)


# -- Subnet overlaps ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subnets", "refused"),
    [
        ({"a": subnet("a", "10.0.0.0/24"), "b": subnet("b", "10.0.0.128/25", created="t2")}, {"b"}),
        ({"a": subnet("a", "10.0.0.0/24", created="t2"), "b": subnet("b", "10.0.0.0/16")}, {"a"}),
        (
            {"a": subnet("a", "10.0.0.0/24"), "b": subnet("b", "10.0.0.0/24", provider="other.ns")},
            set(),
        ),
        (
            {
                "a": subnet("a", "10.0.0.0/24", provider="ovn"),
                "b": subnet("b", "10.0.0.0/24", provider="x.ns.ovn"),
            },
            {"b"},
        ),
        (
            {
                "a": subnet("a", "10.0.0.0/24", provider="ovn"),
                "b": subnet("b", "10.0.0.0/24", provider="ovn", vpc="v2"),
            },
            set(),
        ),
        (
            {
                "a": subnet("a", "10.0.0.0/24,fd00::/64"),
                "b": subnet("b", "fd00::/120", created="t2"),
            },
            {"b"},
        ),
    ],
)
def test_subnets_of_one_network_must_not_overlap_the_older_wins(
    subnets: dict[str, SubnetView], refused: set[str]
) -> None:
    found = refused_subnets({SubnetName(k): v for k, v in subnets.items()})
    assert set(found) == refused
    assert all(isinstance(e, SubnetOverlap) for e in found.values())


# -- Vips ------------------------------------------------------------------------------------


def test_a_provider_scoped_vip_is_taken_and_wins_over_a_fixed_address() -> None:
    annotated = pod(
        **{"net.ns.kubernetes.io/vip": "v", "net.ns.kubernetes.io/ip_address": "10.0.0.3"}
    )
    (nic,) = plan_pod(annotated, world(vips=[vip()])).nics
    assert (nic.vip, nic.fixed_ips, nic.mac) == ("v", (), None)


def test_the_kube_ovn_vip_annotation_goes_to_the_nic_in_the_vip_subnet() -> None:
    (nic,) = plan_pod(pod(**{"ovn.kubernetes.io/vip": "v"}), world(vips=[vip()])).nics
    assert nic.vip == "v"


@pytest.mark.parametrize(
    ("annotations", "vips", "error"),
    [
        ({"ovn.kubernetes.io/vip": "nosuch"}, [vip()], VipNotFound),
        ({"net.ns.kubernetes.io/vip": "nosuch"}, [vip()], VipNotFound),
        ({"ovn.kubernetes.io/vip": "v"}, [vip(subnet="elsewhere")], VipNoNic),
        ({"net.ns.kubernetes.io/vip": "v"}, [vip(reserved=False)], VipNotReserved),
        ({"net.ns.kubernetes.io/vip": "v"}, [vip(namespace="other")], VipNamespaceMismatch),
    ],
)
def test_vip_refusals(annotations: dict[str, str], vips: list[VipView], error: type) -> None:
    plan = plan_pod(pod(**annotations), world(vips=vips))
    assert [type(e) for e in plan.errors] == [error]


# -- conditions and status ranges --------------------------------------------------------


def test_an_unchanged_condition_keeps_its_timestamps() -> None:
    first = merged([], Verdict.ok("Ready"), generation=1, now="t1")
    again = merged(first, Verdict.ok("Ready"), generation=1, now="t2")
    assert again == first
    refused = merged(first, Verdict.refused("CIDROverlap", "overlaps"), generation=2, now="t3")
    ready, error = condition(refused, "Ready"), condition(refused, "Error")
    assert (ready["status"], ready["reason"], ready["lastTransitionTime"]) == (
        "False",
        "CIDROverlap",
        "t3",
    )
    assert (error["status"], error["message"]) == ("True", "overlaps")


def test_status_ranges_in_kube_ovn_form() -> None:
    layout = subnet("net", "10.0.0.0/24", excludeIps=["10.0.0.100..10.0.0.199"]).layouts[0]
    chunk = Chunk(0)
    for offset in (2, 3, 4, 9):
        chunk.set(offset)
    occupancy = family_occupancy(layout, [chunk])
    assert range_text(layout, occupancy.leased) == "10.0.0.2-10.0.0.4,10.0.0.9"
    assert range_text(layout, occupancy.available) == (
        "10.0.0.5-10.0.0.8,10.0.0.10-10.0.0.99,10.0.0.200-10.0.0.254"
    )
    assert (occupancy.usage.used, occupancy.usage.available) == (4, 253 - 100 - 4)
    many = Ranges(tuple((2 * n, 2 * n) for n in range(200)))
    assert range_text(layout, many, limit=3).endswith(",...(+197 more)")


def test_leased_ranges_join_runs_across_chunks() -> None:
    first, second = Chunk(0), Chunk(1)
    first.set(4095)
    second.set(4096)
    assert leased_ranges([second, first]).pairs == ((4095, 4096),)


@pytest.mark.parametrize(
    ("a", "b", "both", "only_a"),
    [
        (((0, 10),), ((3, 4), (8, 12)), ((3, 4), (8, 10)), ((0, 2), (5, 7))),
        (((0, 10), (20, 30)), ((5, 25),), ((5, 10), (20, 25)), ((0, 4), (26, 30))),
        (((0, 10),), (), (), ((0, 10),)),
    ],
)
def test_range_arithmetic(a: tuple, b: tuple, both: tuple, only_a: tuple) -> None:  # type: ignore[type-arg]
    assert Ranges(a).intersection(Ranges(b)).pairs == both
    assert Ranges(a).difference(Ranges(b)).pairs == only_a


def test_pool_exhausted_when_namespace_pools_hold_nothing_of_the_subnet() -> None:
    # A bound pool whose every entry is reserved still yields candidates the store refuses;
    # a pool with no address of the Subnet's family gives none: refused at planning.
    v6 = subnet("net", "fd00::/64")
    bound = pool("a", ["fd00::5"], namespaces=["ns"])
    (nic,) = plan_pod(pod(), world([bound], net=v6)).nics
    assert nic.request.pool == (("fd00::5",),)
    assert PoolExhausted.reason == "PoolExhausted"


@pytest.mark.parametrize(
    ("annotations", "expected"),
    [({}, False), ({"net.ns.kubernetes.io/default_route": "true"}, True)],
)
def test_kube_ovn_default_route_annotation_picks_the_nic(
    annotations: dict[str, str], expected: bool
) -> None:
    (nic,) = plan_pod(pod(**annotations), world()).nics
    assert nic.request.default_route is expected


def test_a_malformed_default_route_is_refused() -> None:
    plan = plan_pod(pod(**{"net.ns.kubernetes.io/default_route": "yes"}), world())
    assert [e.reason for e in plan.errors] == ["InvalidAnnotation"]
