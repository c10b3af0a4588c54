"""Validating a Subnet's user-written fields: every refusal names what is wrong."""

from __future__ import annotations

import pytest

from store.core.subnetspec import parse_subnet_spec
from store.errors import InvalidSubnetSpec

pytestmark = pytest.mark.unit


def test_seed_macvlan_subnet_reserves_gateway_and_excludes() -> None:
    spec = parse_subnet_spec(
        "macvlan",
        cidr_block="172.17.0.0/16",
        provider="macvlan.default",
        gateway="172.17.0.1",
        exclude_ips=["172.17.0.0..172.17.0.10"],
        protocol="IPv4",
    )
    (layout,) = spec.layouts
    assert layout.gateway == "172.17.0.1"
    assert all(offset in layout.reserved for offset in range(11))
    assert 11 not in layout.reserved
    assert 65535 in layout.reserved  # broadcast
    assert layout.usable() == 65536 - 12
    assert layout.excluded.count() == 11


def test_dual_stack_has_one_layout_per_family_ipv4_first() -> None:
    spec = parse_subnet_spec("dual", cidr_block="fd00::/120,10.1.0.0/24", provider="a.b")
    assert [lay.family for lay in spec.layouts] == [4, 6]
    assert spec.protocol == "Dual"
    assert [lay.gateway for lay in spec.layouts] == ["10.1.0.1", "fd00::1"]


def test_ipv6_has_no_broadcast_reservation() -> None:
    (layout,) = parse_subnet_spec("v6", cidr_block="fd00::/64", provider="a.b").layouts
    assert layout.size == 2**64
    assert (2**64 - 1) not in layout.reserved
    assert 0 in layout.reserved and 1 in layout.reserved  # network, gateway


def test_cidr_exclude_and_single_ip_excludes() -> None:
    spec = parse_subnet_spec(
        "x", cidr_block="10.0.0.0/24", provider="a.b", exclude_ips=["10.0.0.64/26", "10.0.0.200"]
    )
    (layout,) = spec.layouts
    assert layout.excluded.pairs == ((64, 127), (200, 200))


def test_spec_round_trips_through_json() -> None:
    spec = parse_subnet_spec(
        "x", cidr_block="10.0.0.0/24,fd00::/64", provider="a.b", exclude_ips=["10.0.0.5"], mtu=1400
    )
    assert type(spec).from_json(spec.to_json()) == spec


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"cidr_block": ""}, "cidrBlock is required"),
        ({"cidr_block": "10.0.0.0"}, "not a CIDR"),
        ({"cidr_block": "10.0.0.1/24"}, "host bits set"),
        ({"cidr_block": "10.0.0.0/33"}, "invalid prefix"),
        ({"cidr_block": "300.0.0.0/8"}, "not an IP address"),
        ({"cidr_block": "10.0.0.0/24,10.1.0.0/24"}, "two IPv4 CIDRs"),
        ({"gateway": "10.9.0.1"}, "gateway 10.9.0.1 is not inside"),
        ({"gateway": "gw"}, "not an IP address"),
        ({"exclude_ips": ["10.9.0.1"]}, "is not inside"),
        ({"exclude_ips": ["10.0.0.9..10.0.0.2"]}, "runs backwards"),
        ({"exclude_ips": ["10.0.0.1..fd00::1"]}, "different families"),
        ({"exclude_ips": ["ten"]}, "not an IP address"),
        ({"exclude_ips": "10.0.0.1"}, "must be a list"),
        ({"protocol": "IPv6"}, "does not match"),
        ({"protocol": "ipv4"}, "is not IPv4, IPv6 or Dual"),
        ({"provider": ""}, "provider"),
        ({"provider": "a/b"}, "provider"),
        ({"mtu": 70000}, "mtu"),
    ],
)
def test_malformed_fields_are_refused_with_a_message_naming_them(
    fields: dict[str, object], message: str
) -> None:
    arguments: dict[str, object] = {"cidr_block": "10.0.0.0/24", "provider": "a.b", **fields}
    with pytest.raises(InvalidSubnetSpec, match=message):
        parse_subnet_spec("bad", **arguments)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["", "Upper", "-lead", "a_b", "x" * 254])
def test_subnet_names_must_be_dns_subdomains(name: str) -> None:
    with pytest.raises(InvalidSubnetSpec, match="DNS-1123"):
        parse_subnet_spec(name, cidr_block="10.0.0.0/24", provider="a.b")


@pytest.mark.parametrize("mtu", [1, 10, 67, 65536, -1])
def test_an_mtu_no_link_can_have_is_refused(mtu: int) -> None:
    with pytest.raises(InvalidSubnetSpec, match=r"68\.\.65535"):
        parse_subnet_spec("s", cidr_block="10.0.0.0/24", mtu=mtu)
