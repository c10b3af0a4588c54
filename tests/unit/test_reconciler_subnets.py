"""Subnet objects and IPPools as planning sees them."""

from __future__ import annotations

import pytest

from reconciler.core.errors import InvalidIPPool, InvalidSubnet
from reconciler.core.ippools import (
    MAX_CANDIDATES,
    IPPoolView,
    ippool_from_object,
    pool_candidates,
)
from reconciler.core.subnets import store_spec_of, subnet_from_object
from store.errors import InvalidSubnetSpec

pytestmark = pytest.mark.unit


def test_seed_subnet() -> None:
    view = subnet_from_object(
        "macvlan",
        {
            "protocol": "IPv4",
            "provider": "macvlan.default",
            "cidrBlock": "172.17.0.0/16",
            "gateway": "172.17.0.1",
            "excludeIps": ["172.17.0.0..172.17.0.10"],
        },
    )
    assert (view.provider, view.families, view.gateway) == ("macvlan.default", (4,), "172.17.0.1")


def test_subnet_without_provider_is_ovn_and_dual_stack_orders_v4_first() -> None:
    view = subnet_from_object("d", {"cidrBlock": "fd00::/64,10.0.0.0/24"})
    assert view.provider == "ovn" and view.families == (4, 6)


@pytest.mark.parametrize(
    "spec",
    [
        {},
        {"cidrBlock": "nope"},
        {"cidrBlock": "10.0.0.0/24,10.1.0.0/24"},
        {"cidrBlock": "10.0.0.0/24", "excludeIps": "10.0.0.1"},
        {"cidrBlock": "10.0.0.0/24", "provider": 3},
    ],
)
def test_bad_subnets_are_refused(spec: dict) -> None:
    with pytest.raises(InvalidSubnet):
        subnet_from_object("s", spec)


def test_pool_candidates_intersect_the_subnet_and_pair_families() -> None:
    subnet = subnet_from_object("d", {"cidrBlock": "10.0.0.0/24,fd00::/64"})
    pool = IPPoolView("p", "d", ("10.0.0.254..10.0.1.2", "fd00::10/127", "192.168.0.1"))
    assert pool_candidates(pool, subnet) == (("10.0.0.254", "fd00::10"), ("10.0.0.255", "fd00::11"))


@pytest.mark.parametrize("ips", [["10.0.0.5..10.0.0.1"], ["x"], ["10.0.0.1..fd00::1"]])
def test_bad_pool_entries_are_refused(ips: list[str]) -> None:
    subnet = subnet_from_object("s", {"cidrBlock": "10.0.0.0/24"})
    with pytest.raises(InvalidIPPool):
        pool_candidates(IPPoolView("p", "s", tuple(ips)), subnet)


def test_ippool_object_needs_a_subnet() -> None:
    with pytest.raises(InvalidIPPool):
        ippool_from_object("p", {"ips": ["10.0.0.1"]})
    assert ippool_from_object("p", {"subnet": "s", "ips": ["10.0.0.1"]}).subnet == "s"


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ({"cidrBlock": "10.0.0.0/24", "mtu": "1500"}, "mtu '1500' is not an integer"),
        ({"cidrBlock": "10.0.0.0/24", "excludeIps": "10.0.0.1"}, "must be a list"),
        ({"cidrBlock": "10.0.0.1/24"}, "host bits set"),
    ],
)
def test_a_subnet_object_the_store_cannot_register_is_refused_with_a_reason(
    spec: dict[str, object], words: str
) -> None:
    with pytest.raises(InvalidSubnetSpec, match=words):
        store_spec_of("bad", spec)


def test_a_subnet_object_becomes_the_store_spec() -> None:
    spec = store_spec_of(
        "macvlan",
        {
            "provider": "macvlan.default",
            "cidrBlock": "172.17.0.0/16",
            "gateway": "172.17.0.1",
            "excludeIps": ["172.17.0.0..172.17.0.10"],
            "protocol": "IPv4",
        },
    )
    assert (spec.provider, spec.cidr_block, spec.exclude_ips) == (
        "macvlan.default",
        "172.17.0.0/16",
        ("172.17.0.0..172.17.0.10",),
    )


def test_planning_refuses_a_subnet_the_store_would_refuse() -> None:
    """Issue 8 item 10: one reading of a Subnet. The planner used to accept
    ``10.0.0.5/24`` (stdlib, strict=False) that the store then refused, so a
    pod's other NICs committed and leaked."""
    with pytest.raises(InvalidSubnet, match="host bits"):
        subnet_from_object("s", {"cidrBlock": "10.0.0.5/24"})
    with pytest.raises(InvalidSubnet, match="gateway"):
        subnet_from_object("s", {"cidrBlock": "10.0.0.0/24", "gateway": "10.9.9.9"})
    with pytest.raises(InvalidSubnet, match="excludeIps"):
        subnet_from_object("s", {"cidrBlock": "10.0.0.0/24", "excludeIps": ["10.9.0.0/24"]})


@pytest.mark.timeout(30)  # guards against a hang, measures nothing
@pytest.mark.parametrize(
    "ips",
    [
        ["10.1.0.0/24", "fd01::/64"],
        ["fd01::/64", "10.1.0.0/24"],
        ["10.1.0.0..10.1.0.255", "fd01::..fd01::ffff:ffff:ffff:ffff"],
        ["0.0.0.0/0", "::/0"],
    ],
)
def test_a_dual_stack_pool_is_bounded_per_family_before_it_is_walked(ips: list[str]) -> None:
    """Issue 8 item 6: the cap was applied after the family filter, so the IPv4
    pass walked 2^64 IPv6 addresses and hung the worker forever."""
    subnet = subnet_from_object("d", {"cidrBlock": "10.1.0.0/24,fd01::/64"})
    found = pool_candidates(IPPoolView("p", "d", tuple(ips)), subnet)
    assert len(found) == 256
    assert found[0] == ("10.1.0.0", "fd01::")
    assert all(pair[0].startswith("10.1.0.") and pair[1].startswith("fd01::") for pair in found)


def test_an_ipv6_pool_larger_than_the_cap_stops_at_the_cap() -> None:
    subnet = subnet_from_object("v6", {"cidrBlock": "fd01::/64"})
    found = pool_candidates(IPPoolView("p", "v6", ("fd01::/64",)), subnet)
    assert len(found) == MAX_CANDIDATES


def test_an_ippool_object_with_a_bad_entry_is_refused_when_read() -> None:
    with pytest.raises(InvalidIPPool, match="not an IP"):
        ippool_from_object("p", {"subnet": "s", "ips": ["10.0.0.1", "10.0.0.x"]})
