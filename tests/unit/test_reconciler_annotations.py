"""Per-provider annotation values: what users write, and what the controller writes back."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.core import annotations as ann
from reconciler.core.errors import FamilyMismatch, InvalidIPPoolAnnotation, InvalidRoutes
from store.core.identity import AttachmentRef, Mac, PodRef, PodUID, Provider, SubnetName
from store.core.records import Attachment, LeasedIP, Route
from store.errors import InvalidAddress, InvalidMac

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("172.17.0.100", ("172.17.0.100",)),
        ("fd00::0015", ("fd00::15",)),
        (" 10.16.0.15 , fd00:10:16::15 ", ("10.16.0.15", "fd00:10:16::15")),
        ("fd00:10:16::15,10.16.0.15", ("10.16.0.15", "fd00:10:16::15")),
    ],
)
def test_ip_address_forms(value: str, expected: tuple[str, ...]) -> None:
    assert ann.parse_ip_set(value, "k") == expected


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("", InvalidAddress),
        ("172.17.0.300", InvalidAddress),
        ("172.17.0.1/24", InvalidAddress),
        ("10.0.0.1,10.0.0.2", FamilyMismatch),
        ("10.0.0.1,fd00::1,fd00::2", FamilyMismatch),
    ],
)
def test_bad_ip_address_values(value: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        ann.parse_ip_set(value, "macvlan.default.kubernetes.io/ip_address")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("00:00:00:53:6B:BB", "00:00:00:53:6b:bb"), ("02-aa-bb-cc-dd-ee", "02:aa:bb:cc:dd:ee")],
)
def test_mac_forms(value: str, expected: str) -> None:
    assert ann.parse_mac(value, "k") == expected


@pytest.mark.parametrize(
    "value",
    ["00:00:00:53:6B", "zz:00:00:00:00:00", "01:00:5e:00:00:01", "00:00:00:00:00:00", "0000.5e00"],
)
def test_bad_macs(value: str) -> None:
    with pytest.raises(InvalidMac):
        ann.parse_mac(value, "k")


@pytest.mark.parametrize(
    ("value", "entries"),
    [
        (
            "172.17.0.200,172.17.0.201,172.17.0.202",
            (("172.17.0.200",), ("172.17.0.201",), ("172.17.0.202",)),
        ),
        ("10.16.0.15,fd00::15", (("10.16.0.15", "fd00::15"),)),
        (
            "10.16.0.15,fd00::15;10.16.0.16,fd00::16",
            (("10.16.0.15", "fd00::15"), ("10.16.0.16", "fd00::16")),
        ),
        ("fd00::1;fd00::2", (("fd00::1",), ("fd00::2",))),
    ],
)
def test_ip_pool_address_lists(value: str, entries: tuple) -> None:
    assert ann.parse_ip_pool(value, "k") == ann.PoolRequest(entries=entries)


def test_ip_pool_single_name_is_an_ippool() -> None:
    assert ann.parse_ip_pool(" pool-1 ", "k") == ann.PoolRequest(pool_name="pool-1")


@pytest.mark.parametrize(
    "value",
    ["", "10.0.0.1,,10.0.0.2", "pool-1,10.0.0.1", "Pool_1", "10.0.0.1;10.0.0.1", "10.0.0.1;"],
)
def test_bad_ip_pools(value: str) -> None:
    with pytest.raises(InvalidIPPoolAnnotation):
        ann.parse_ip_pool(value, "k")


def test_seed_routes_example() -> None:
    value = """[{
        "dst": "192.168.0.101/24",
        "gw": "172.17.0.254"
      }, {
        "gw": "172.17.0.254"
      }]"""
    assert ann.parse_routes(value, "k") == (
        Route(dst="192.168.0.0/24", gw="172.17.0.254"),
        Route(dst="", gw="172.17.0.254"),
    )


@pytest.mark.parametrize(
    "value",
    [
        "{",
        '{"dst": "1.0.0.0/8"}',
        "[1]",
        "[{}]",
        '[{"dst": "x"}]',
        '[{"gw": "y"}]',
        '[{"dst": 5}]',
        '[{"dst": "10.0.0.0/8", "gw": "fd00::1"}]',
    ],
)
def test_bad_routes(value: str) -> None:
    with pytest.raises(InvalidRoutes):
        ann.parse_routes(value, "k")


def attachment(ips: tuple[LeasedIP, ...]) -> Attachment:
    return Attachment(
        ref=AttachmentRef(PodRef("default", "p"), Provider("macvlan.default")),
        uid=PodUID("u1"),
        subnet=SubnetName("macvlan"),
        interface="net1",
        ips=ips,
        mac=Mac("00:00:00:53:6b:bb"),
    )


def test_render_writes_kube_ovn_keys() -> None:
    att = attachment(
        (
            LeasedIP(6, "fd00::5", "fd00::/64", "fd00::1"),
            LeasedIP(4, "172.17.0.100", "172.17.0.0/16", "172.17.0.1"),
        )
    )
    out = ann.render(att, provider="macvlan.default", subnet_provider="macvlan.default")
    assert out == {
        "macvlan.default.kubernetes.io/allocated": "true",
        "macvlan.default.kubernetes.io/ip_address": "172.17.0.100,fd00::5",
        "macvlan.default.kubernetes.io/mac_address": "00:00:00:53:6b:bb",
        "macvlan.default.kubernetes.io/cidr": "172.17.0.0/16,fd00::/64",
        "macvlan.default.kubernetes.io/gateway": "172.17.0.1,fd00::1",
    }
    assert ann.is_rendered({**out, "other": "x"}, out)
    assert not ann.is_rendered({}, out)


def test_render_adds_logical_switch_for_ovn_subnets_and_echoes_routes() -> None:
    att = attachment((LeasedIP(4, "172.17.0.100", "172.17.0.0/16", "172.17.0.1"),))
    out = ann.render(
        att, provider="attachnet.default.ovn", subnet_provider="ovn", routes_given="[]"
    )
    assert out["attachnet.default.ovn.kubernetes.io/logical_switch"] == "macvlan"
    assert out["attachnet.default.ovn.kubernetes.io/routes"] == "[]"
    assert not any(k.startswith("ovn.kubernetes.io/") for k in out)


v4 = st.ip_addresses(v=4).map(str)
v6 = st.ip_addresses(v=6).map(str)


@given(st.lists(st.tuples(v4, v6), min_size=1, max_size=8, unique=True))
def test_dual_stack_pool_round_trips_through_both_separators(pairs: list) -> None:
    text = ";".join(f"{a},{b}" for a, b in pairs)
    expected = tuple((str(ipaddress.ip_address(a)), str(ipaddress.ip_address(b))) for a, b in pairs)
    if len(set(expected)) == len(expected):
        assert ann.parse_ip_pool(text, "k").entries == expected


@given(st.text(max_size=40))
def test_any_pool_text_parses_or_is_refused_cleanly(value: str) -> None:
    try:
        found = ann.parse_ip_pool(value, "k")
    except (InvalidIPPoolAnnotation, InvalidAddress):
        return
    assert found.pool_name or found.entries


@pytest.mark.parametrize(
    "value",
    ['[{"dst": "10.0.0.0/8", "gw": "fe80::1%eth0"}]', '[{"gw": "10.1"}]', '[{"gw": "010.0.0.1"}]'],
)
def test_route_gateways_are_read_as_strictly_as_the_store_reads_addresses(value: str) -> None:
    """A zone id or a legacy form would pass the planner and fail at CNI ADD on the node."""
    with pytest.raises(InvalidRoutes, match="not an IP address"):
        ann.parse_routes(value, "routes")
