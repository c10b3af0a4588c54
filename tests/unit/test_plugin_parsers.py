"""The parsers between untrusted values and ``ip``: the plugin's and the agent's.

The plugin (standard library only, ``inet_pton``) and the agent (``ipaddress``
and ``re``) apply the same rules with different tools. Tables pin each rule
with the values an attacker or a typo would send; hypothesis checks that the
two implementations agree on any text, and that what the plugin accepts
comes back re-printed with nothing ``ip`` could read as a second argument.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cnibin import plugin
from cnibin.agent import fields
from cnibin.agent.protocol import RequestError, parse_add_request

pytestmark = pytest.mark.unit

SMUGGLED = "\nnetns add pwn"


def accepts(parse: Callable[[Any], Any], value: Any) -> bool:
    try:
        parse(value)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("10.0.0.1", "10.0.0.1"),
        ("FD00:0:0::1", "fd00::1"),
        ("::ffff:10.0.0.1", "::ffff:10.0.0.1"),
        ("10.0.0.1 dev lo", None),
        (f"10.0.0.1{SMUGGLED}", None),
        ("10.0.0.1\n", None),
        (" 10.0.0.1", None),
        ("010.0.0.1", None),
        ("10.0.0", None),
        ("10.0.0.256", None),
        ("fe80::1%eth0", None),
        ("10.0.0.1\x00", None),
        ("\u0661.0.0.1", None),
        (167772161, None),
        (None, None),
        ("", None),
    ],
)
def test_addresses(value: Any, text: str | None) -> None:
    if text is None:
        assert not accepts(plugin.ip_text, value)
        assert not accepts(fields.address, value)
    else:
        assert plugin.ip_text(value) == text
        assert fields.address(value).packed == plugin.parse_ip(value)[1]


@pytest.mark.parametrize(
    ("value", "network"),
    [
        ("192.168.0.101/24", "192.168.0.0/24"),
        ("10.0.0.7", "10.0.0.7/32"),
        ("0.0.0.0/0", "0.0.0.0/0"),
        ("fd00::1:2/112", "fd00::1:0/112"),
        ("10.0.0.0/33", None),
        ("10.0.0.0/-1", None),
        ("10.0.0.0/8 dev lo", None),
        ("10.0.0.0/8\n", None),
        (f"10.0.0.0/8{SMUGGLED}", None),
        ("10.0.0.0/ 8", None),
        ("10.0.0.0/+8", None),
        ("10.0.0.0/\u0668", None),
        ("10.0.0.0/0008", None),
        ("fd00::/129", None),
        ("10.0.0.0/8/8", None),
    ],
)
def test_cidrs(value: str, network: str | None) -> None:
    if network is None:
        assert not accepts(plugin.canonical_cidr, value)
    else:
        assert plugin.canonical_cidr(value) == network


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("net1", True),
        ("eth0", True),
        ("br-nicpool", True),
        ("vlan.100", True),
        ("x" * 15, True),
        ("x" * 16, False),
        ("\u00e9" * 8, False),  # 8 characters, 16 bytes
        ("", False),
        (".", False),
        ("..", False),
        ("net 1", False),
        ("net1\t", False),
        (f"net1{SMUGGLED}", False),
        ("net/1", False),
        ("net:1", False),
        ("net%d", False),
        ("net\x00", False),
        ("net\u00a01", False),
        (1, False),
    ],
)
def test_interface_names(value: Any, ok: bool) -> None:
    assert accepts(plugin.ifname, value) is ok
    if isinstance(value, str):  # the agent checks the type first (protocol._text)
        assert accepts(fields.if_name, value) is ok


@pytest.mark.parametrize(
    ("value", "mac"),
    [
        ("0a:58:AC:11:00:14", "0a:58:ac:11:00:14"),
        ("0a:58:ac:11:00", None),
        ("0a:58:ac:11:00:14:15", None),
        ("0a-58-ac-11-00-14", None),
        ("01:00:5e:00:00:01", None),  # multicast
        ("00:00:00:00:00:00", None),
        ("0a:58:ac:11:00:1g", None),
        ("0a:58:ac:11:00: 4", None),
        ("0a:58:ac:11:00:+4", None),
        (f"0a:58:ac:11:00:14{SMUGGLED}", None),
    ],
)
def test_macs(value: str, mac: str | None) -> None:
    if mac is None:
        assert not accepts(plugin.mac_text, value)
    else:
        assert plugin.mac_text(value) == mac


@pytest.mark.parametrize(
    ("value", "mtu"),
    [(None, 0), (0, 0), (68, 68), (1500, 1500), (65535, 65535)]
    + [(v, None) for v in (67, 65536, -1, 10**12, "1500", 1500.0, True, False, [1500])],
)
def test_mtus(value: Any, mtu: int | None) -> None:
    if mtu is None:
        assert not accepts(plugin.mtu, value)
    else:
        assert plugin.mtu(value) == mtu


@pytest.mark.parametrize(
    ("parse", "value", "ok"),
    [
        (plugin.provider, "macvlan.default", True),
        (plugin.provider, "attachnet.default.ovn", True),
        (plugin.provider, "ovn", True),
        (plugin.provider, "Macvlan.default", False),
        (plugin.provider, "macvlan..default", False),
        (plugin.provider, "macvlan.default.", False),
        (plugin.provider, "-macvlan.default", False),
        (plugin.provider, "macvlan_x.default", False),
        (plugin.provider, "a" * 254, False),
        (plugin.container_id, "0123abcd", True),
        (plugin.container_id, "c-1_2.3", True),
        (plugin.container_id, "-c1", False),
        (plugin.container_id, "", False),
        (plugin.container_id, "c1;x", False),
        (plugin.container_id, "../c1", False),
        (plugin.abs_path, "/var/run/netns/cni-1", True),
        (plugin.abs_path, "/proc/123/ns/net", True),
        (plugin.abs_path, "var/run/netns/x", False),
        (plugin.abs_path, "/var/run/netns/../x", False),
        (plugin.abs_path, "/var/run/netns/./x", False),
        (plugin.abs_path, "/var/run/netns/a b", False),
        (plugin.abs_path, "/var/run/netns/x\n", False),
        (plugin.socket_path, "/run/openvswitch/kube-ovn-daemon.sock", True),
        (plugin.socket_path, "/" + "s" * 107, False),
    ],
)
def test_names_and_paths(parse: Callable[[Any], Any], value: str, ok: bool) -> None:
    assert accepts(parse, value) is ok


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        (None, []),
        ([{"dst": "192.168.0.101/24", "gw": "172.17.0.254"}], [("192.168.0.0/24", "172.17.0.254")]),
        ([{"gw": "FD00::1"}, {"dst": "10.0.0.0/8"}], [("", "fd00::1"), ("10.0.0.0/8", "")]),
        ([{"dst": "", "gw": None}], None),
        ([{"dst": "10.0.0.0/8", "gw": "fd00::1"}], None),
        ([{"dst": "10.0.0.0/8", "gw": f"10.0.0.1{SMUGGLED}"}], None),
        ([{"dst": 10, "gw": "10.0.0.1"}], None),
        (["10.0.0.0/8"], None),
        ({"dst": "10.0.0.0/8"}, None),
        ([{"gw": "10.0.0.1"}] * 65, None),
    ],
)
def test_routes_in_the_plugin_and_the_agent(
    value: Any, parsed: list[tuple[str, str]] | None
) -> None:
    if parsed is None:
        assert not accepts(lambda v: plugin.routes(v, plugin.MAX_CONFIG_ROUTES), value)
        assert not accepts(fields.routes, value)
        return
    from_plugin = plugin.routes(value, plugin.MAX_CONFIG_ROUTES)
    assert [(r.get("dst", ""), r.get("gw", "")) for r in from_plugin] == parsed
    assert list(fields.routes(value)) == parsed


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (None, True),
        ({}, True),
        (
            {
                "nameservers": ["1.1.1.1", "fd00::53"],
                "search": ["svc.local"],
                "options": ["ndots:5"],
            },
            True,
        ),
        ({"domain": "cluster.local"}, True),
        ({"nameservers": "1.1.1.1"}, False),
        ({"nameservers": [f"1.1.1.1{SMUGGLED}"]}, False),
        ({"search": ["svc local"]}, False),
        ({"options": ["ndots:5\nnameserver 6.6.6.6"]}, False),
        ({"domain": ["x"]}, False),
        ({"sortlist": ["10.0.0.0/8"]}, False),
        ("nameserver 1.1.1.1", False),
    ],
)
def test_dns_in_the_plugin_and_the_agent(value: Any, ok: bool) -> None:
    assert accepts(plugin.dns, value) is ok
    assert accepts(fields.dns, value) is ok


def test_the_agent_refuses_each_hostile_field_by_name() -> None:
    base = {"pod_name": "p", "pod_namespace": "default", "provider": "m.default"}
    for field, value in [
        ("pod_name", "P"),
        ("pod_namespace", "a.b"),
        ("provider", "m default"),
        ("if_name", "x" * 16),
        ("container_id", "a b"),
        ("net_ns", "x"),
        ("pod_uid", "a b"),
        ("wait_seconds", True),
    ]:
        with pytest.raises(RequestError, match=field):
            parse_add_request(json.dumps({**base, field: value}).encode())


ADDRESSISH = st.text(alphabet="0123456789abcdefABCDEF.:/%x \n\t", max_size=48)


@given(st.one_of(ADDRESSISH, st.ip_addresses().map(str)))
def test_plugin_and_agent_read_any_address_alike(text: str) -> None:
    """Same verdict, same bytes; and the plugin's re-print is one plain word."""
    assert accepts(plugin.parse_ip, text) == accepts(fields.address, text)
    if accepts(plugin.parse_ip, text):
        printed = plugin.ip_text(text)
        assert printed.split() == [printed]
        assert plugin.ip_text(printed) == printed
        assert ipaddress.ip_address(printed).packed == fields.address(text).packed


CIDRS = st.tuples(st.ip_addresses(v=4), st.integers(0, 32)) | st.tuples(
    st.ip_addresses(v=6), st.integers(0, 128)
)


@given(st.one_of(ADDRESSISH, CIDRS.map(lambda c: f"{c[0]}/{c[1]}")))
def test_a_canonical_cidr_is_ipaddress_network(text: str) -> None:
    if accepts(plugin.canonical_cidr, text):
        canonical = plugin.canonical_cidr(text)
        assert canonical.split() == [canonical]
        assert ipaddress.ip_network(canonical) == ipaddress.ip_network(text, strict=False)


NAMEISH = st.text(alphabet=st.sampled_from("abcXYZ019-_.:/% \n\t\u00e9\u00a0\x00"), max_size=20)


@given(NAMEISH)
def test_plugin_and_agent_agree_on_interface_names_and_providers(text: str) -> None:
    assert accepts(plugin.ifname, text) == accepts(fields.if_name, text)
    assert accepts(plugin.provider, text) == accepts(fields.provider, text)
    assert accepts(plugin.container_id, text) == accepts(fields.container_id, text)
    if accepts(plugin.ifname, text):
        assert text.split() == [text]
        assert text.isprintable()
