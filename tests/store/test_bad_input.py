"""Bad input is a feature: every malformed subnet spec or address is refused
with a clear permanent error, and etcd is left exactly as it was.

Each case runs against a prefix that already holds a subnet and a lease, and
compares a full dump of the prefix (values and mod_revisions) before and
after.
"""

from __future__ import annotations

from typing import Any

import pytest

from store.core.identity import SubnetName
from store.core.subnetspec import parse_subnet_spec
from store.errors import (
    AddressInUse,
    ExcludedAddress,
    InvalidAddress,
    InvalidMac,
    InvalidSubnetSpec,
    OutsideSubnet,
    PermanentError,
    UnknownSubnet,
)
from store.etcd import EtcdClient
from store.leases import UNFENCED, Ipam
from store.subnets import Subnets
from tests.store.helpers import PROVIDER, dump, register, request

pytestmark = pytest.mark.store

GOOD: dict[str, Any] = {"cidr_block": "10.0.0.0/24", "provider": PROVIDER}

BAD_SPECS: list[tuple[str, dict[str, Any], str]] = [
    ("not a CIDR", {"cidr_block": "10.0.0.0"}, "not a CIDR"),
    ("garbage CIDR", {"cidr_block": "ten.0.0.0/24"}, "not an IP address"),
    ("prefix too long", {"cidr_block": "10.0.0.0/33"}, "invalid prefix length"),
    ("IPv6 prefix too long", {"cidr_block": "fd00::/129"}, "invalid prefix length"),
    ("host bits set", {"cidr_block": "10.0.0.1/24"}, "host bits set; did you mean 10.0.0.0/24"),
    ("empty cidrBlock", {"cidr_block": ""}, "cidrBlock is required"),
    ("two IPv4 CIDRs", {"cidr_block": "10.0.0.0/24,10.1.0.0/24"}, "two IPv4 CIDRs"),
    ("two IPv6 CIDRs", {"cidr_block": "fd00::/64,fd01::/64"}, "two IPv6 CIDRs"),
    ("gateway outside", {"gateway": "10.1.0.1"}, "gateway 10.1.0.1 is not inside"),
    ("gateway garbage", {"gateway": "10.0.0.x"}, "not an IP address"),
    ("gateway of a missing family", {"gateway": "fd00::1"}, "not inside"),
    ("exclude outside", {"exclude_ips": ["10.1.0.5"]}, "not inside 10.0.0.0/24"),
    ("exclude range partly outside", {"exclude_ips": ["10.0.0.250..10.0.1.5"]}, "not inside"),
    ("exclude range backwards", {"exclude_ips": ["10.0.0.20..10.0.0.10"]}, "runs backwards"),
    ("exclude range mixed", {"exclude_ips": ["10.0.0.1..fd00::1"]}, "different families"),
    ("exclude garbage", {"exclude_ips": ["banana"]}, "not an IP address"),
    ("exclude half range", {"exclude_ips": ["10.0.0.5.."]}, "not an IP address"),
    ("exclude CIDR with host bits", {"exclude_ips": ["10.0.0.5/28"]}, "host bits set"),
    ("exclude not a list", {"exclude_ips": "10.0.0.5"}, "must be a list"),
    ("protocol mismatch", {"protocol": "IPv6"}, "does not match"),
    ("dual protocol single stack", {"protocol": "Dual"}, "does not match"),
    ("unknown protocol", {"protocol": "IPv5"}, "not IPv4, IPv6 or Dual"),
    ("bad name", {"name": "Net_1"}, "not a DNS-1123 subdomain"),
    ("empty name", {"name": ""}, "not a DNS-1123 subdomain"),
    ("bad provider", {"provider": "net1 default"}, "provider 'net1 default' is not valid"),
    ("empty provider", {"provider": ""}, "is not valid"),
    ("mtu negative", {"mtu": -1}, r"mtu -1 is not 0 \(unset\) or an integer in 68\.\.65535"),
    ("mtu too large", {"mtu": 65536}, "mtu 65536"),
    ("mtu not an int", {"mtu": "1500"}, "mtu '1500'"),
]


@pytest.fixture
def populated(client: EtcdClient, etcd_prefix: str, ipam: Ipam) -> dict[str, Any]:
    """A registered dual-stack subnet with one lease; returns the dump to compare."""
    register(
        client,
        etcd_prefix,
        cidr_block="10.0.0.0/24,fd00::/120",
        exclude_ips=["10.0.0.100..10.0.0.109"],
    )
    ipam.allocate(
        [request("holder", fixed_ips=("10.0.0.50",), mac="0a:00:00:00:00:01")], fence=UNFENCED
    )
    return dump(client, etcd_prefix)


@pytest.mark.parametrize("bad", BAD_SPECS, ids=[c[0] for c in BAD_SPECS])
def test_malformed_subnet_spec_is_refused_and_etcd_unchanged(
    client: EtcdClient,
    etcd_prefix: str,
    subnets: Subnets,
    populated: dict[str, Any],
    bad: tuple[str, dict[str, Any], str],
) -> None:
    _, fields, message = bad
    given = {**GOOD, **fields}
    name = given.pop("name", "net1")
    with pytest.raises(InvalidSubnetSpec, match=message) as raised:
        # What the controller does with a Subnet resource: parse, then store.
        subnets.put(parse_subnet_spec(name, **given), fence=UNFENCED)
    assert isinstance(raised.value, PermanentError)
    assert raised.value.reason == "InvalidSubnetSpec"
    assert dump(client, etcd_prefix) == populated


BAD_REQUESTS: list[tuple[str, dict[str, Any], type[PermanentError], str]] = [
    ("not an IP", {"fixed_ips": ("10.0.0.x",)}, InvalidAddress, "not an IP address"),
    ("legacy IPv4 form", {"fixed_ips": ("10.1",)}, InvalidAddress, "not an IP address"),
    ("empty address", {"fixed_ips": ("",)}, InvalidAddress, "not an IP address"),
    ("outside the subnet", {"fixed_ips": ("10.0.1.5",)}, OutsideSubnet, "outside 10.0.0.0/24"),
    ("IPv6 outside", {"fixed_ips": ("fd01::5",)}, OutsideSubnet, "outside fd00::/120"),
    ("two IPv4 addresses", {"fixed_ips": ("10.0.0.5", "10.0.0.6")}, InvalidAddress, "two IPv4"),
    ("excluded", {"fixed_ips": ("10.0.0.105",)}, ExcludedAddress, "excludeIps"),
    ("the gateway", {"fixed_ips": ("10.0.0.1",)}, ExcludedAddress, "the gateway"),
    ("the IPv6 gateway", {"fixed_ips": ("fd00::1",)}, ExcludedAddress, "the gateway"),
    ("network address", {"fixed_ips": ("10.0.0.0",)}, ExcludedAddress, "reserved"),
    ("broadcast address", {"fixed_ips": ("10.0.0.255",)}, ExcludedAddress, "reserved"),
    ("held by another pod", {"fixed_ips": ("10.0.0.50",)}, AddressInUse, "default/holder"),
    ("multicast MAC", {"mac": "01:00:5e:00:00:01"}, InvalidMac, "multicast"),
    ("broadcast MAC", {"mac": "ff:ff:ff:ff:ff:ff"}, InvalidMac, "multicast"),
    ("all-zero MAC", {"mac": "00:00:00:00:00:00"}, InvalidMac, "all-zero"),
    ("garbage MAC", {"mac": "not-a-mac"}, InvalidMac, "not a MAC address"),
    ("short MAC", {"mac": "0a:00:00:00:01"}, InvalidMac, "not a MAC address"),
    ("bad pool entry", {"pool": (("10.0.0.x",),)}, PermanentError, "10.0.0.x"),
    ("pool all excluded", {"pool": (("10.0.0.100",), ("10.0.0.1",))}, PermanentError, "ip_pool"),
]


@pytest.mark.parametrize("bad", BAD_REQUESTS, ids=[c[0] for c in BAD_REQUESTS])
def test_malformed_request_is_refused_and_etcd_unchanged(
    client: EtcdClient,
    etcd_prefix: str,
    ipam: Ipam,
    populated: dict[str, Any],
    bad: tuple[str, dict[str, Any], type[PermanentError], str],
) -> None:
    _, fields, error, message = bad
    [result] = ipam.allocate([request("newcomer", **fields)], fence=UNFENCED)
    assert isinstance(result, error), result
    assert message in str(result)
    assert dump(client, etcd_prefix) == populated


def test_one_bad_request_does_not_stop_the_rest_of_its_batch(
    client: EtcdClient, etcd_prefix: str, ipam: Ipam, populated: dict[str, Any]
) -> None:
    results = ipam.allocate(
        [request("a"), request("bad", fixed_ips=("10.9.9.9",)), request("b")], fence=UNFENCED
    )
    assert isinstance(results[1], OutsideSubnet)
    assert [type(r).__name__ for r in (results[0], results[2])] == ["Attachment", "Attachment"]


def test_unknown_subnet_is_a_permanent_error_and_writes_nothing(
    client: EtcdClient, etcd_prefix: str, ipam: Ipam, populated: dict[str, Any]
) -> None:
    [refused] = ipam.allocate([request("a", subnet="absent")], fence=UNFENCED)
    assert isinstance(refused, UnknownSubnet) and "absent" in str(refused)
    with pytest.raises(UnknownSubnet):
        ipam.usage(SubnetName("absent"))
    assert dump(client, etcd_prefix) == populated
