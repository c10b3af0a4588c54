"""The CNI result per cniVersion, VERSION, and CHECK's comparison (pure).

Results are built from the agent's reply as :func:`plugin.parse_reply`
returns it, as the plugin does.
"""

from __future__ import annotations

from typing import Any

import pytest

from cnibin import plugin

pytestmark = pytest.mark.unit

REPLY: dict[str, Any] = {
    "ips": [
        {"protocol": "IPv4", "ip": "172.17.0.11", "cidr": "172.17.0.0/16", "gateway": "172.17.0.1"},
        {"protocol": "IPv6", "ip": "fd00::b", "cidr": "fd00::/64", "gateway": "fd00::1"},
    ],
    "mac_address": "0a:00:00:53:6b:bb",
    "routes": [],
    "mtu": 1400,
    "nicname": "net1",
    "dns": {},
}
ENV = {"CNI_IFNAME": "net1", "CNI_NETNS": "/var/run/netns/p", "CNI_CONTAINERID": "c"}


def parsed(reply: dict[str, Any], *, main: bool = False) -> dict[str, Any]:
    return plugin.parse_reply(reply, main=main)


def conf(version: str, *, main: bool = False) -> plugin.NetConf:
    section = {"type": "kube-ovn", "server_socket": "/s", "provider": "p.default"}
    if main:
        return plugin.NetConf({"cniVersion": version, **section})
    return plugin.NetConf({"cniVersion": version, "type": "macvlan", "ipam": section})


@pytest.mark.parametrize("version", ["0.3.0", "0.3.1", "0.4.0"])
def test_old_versions_tag_each_ip_with_its_family(version: str) -> None:
    result = plugin.build_result(conf(version), parsed(REPLY), ENV)
    assert result["cniVersion"] == version
    assert [ip["version"] for ip in result["ips"]] == ["4", "6"]


@pytest.mark.parametrize("version", ["1.0.0", "1.1.0"])
def test_new_versions_have_no_version_field(version: str) -> None:
    result = plugin.build_result(conf(version), parsed(REPLY), ENV)
    assert all("version" not in ip for ip in result["ips"])


@pytest.mark.parametrize("version", plugin.SUPPORTED_VERSIONS)
def test_ipam_results_omit_interfaces(version: str) -> None:
    result = plugin.build_result(conf(version), parsed(REPLY), ENV)
    assert "interfaces" not in result
    assert all("interface" not in ip for ip in result["ips"])
    assert [ip["address"] for ip in result["ips"]] == ["172.17.0.11/16", "fd00::b/64"]


def test_gateways_become_default_routes_when_the_agent_sent_none() -> None:
    result = plugin.build_result(conf("1.0.0"), parsed(REPLY), ENV)
    assert result["routes"] == [
        {"dst": "0.0.0.0/0", "gw": "172.17.0.1"},
        {"dst": "::/0", "gw": "fd00::1"},
    ]


def test_no_gateway_no_routes() -> None:
    reply = {**REPLY, "ips": [{**REPLY["ips"][0], "gateway": ""}]}
    result = plugin.build_result(conf("1.0.0"), parsed(reply), ENV)
    assert "routes" not in result
    assert "gateway" not in result["ips"][0]


def test_agent_routes_with_empty_dst_mean_the_default_route() -> None:
    reply = {
        **REPLY,
        "routes": [{"dst": "192.168.0.0/24", "gw": "172.17.0.254"}, {"gw": "172.17.0.254"}],
    }
    result = plugin.build_result(conf("1.1.0"), parsed(reply), ENV)
    assert result["routes"] == [
        {"dst": "192.168.0.0/24", "gw": "172.17.0.254"},
        {"dst": "0.0.0.0/0", "gw": "172.17.0.254"},
    ]


def test_main_plugin_result_names_the_interface_in_the_sandbox() -> None:
    result = plugin.build_result(conf("1.1.0", main=True), parsed(REPLY, main=True), ENV)
    assert result["interfaces"] == [
        {"name": "net1", "mac": "0a:00:00:53:6b:bb", "sandbox": "/var/run/netns/p", "mtu": 1400}
    ]
    assert all(ip["interface"] == 0 for ip in result["ips"])
    older = plugin.build_result(conf("1.0.0", main=True), parsed(REPLY, main=True), ENV)
    assert "mtu" not in older["interfaces"][0]


def test_version_reports_every_supported_version() -> None:
    info = plugin.version_info(b'{"cniVersion": "0.4.0"}')
    assert info == {"cniVersion": "0.4.0", "supportedVersions": list(plugin.SUPPORTED_VERSIONS)}
    assert plugin.version_info(b"")["cniVersion"] == "1.1.0"


def test_check_accepts_a_matching_prev_result() -> None:
    prev = plugin.build_result(conf("1.0.0", main=True), parsed(REPLY, main=True), ENV)
    plugin.check_against(prev, parsed(REPLY, main=True), "net1", main=True)


@pytest.mark.parametrize(
    ("prev", "words"),
    [
        (None, "prevResult"),
        ({"ips": [{"address": "172.17.0.99/16"}]}, "172.17.0.11/16"),
        (
            {
                "ips": [{"address": "172.17.0.11/16"}, {"address": "fd00::b/64"}],
                "interfaces": [{"name": "net1", "mac": "0a:00:00:00:00:01", "sandbox": "/x"}],
            },
            "MAC",
        ),
    ],
)
def test_check_rejects_a_lease_that_moved(prev: dict[str, Any] | None, words: str) -> None:
    with pytest.raises(plugin.CniError) as caught:
        plugin.check_against(prev, parsed(REPLY, main=True), "net1", main=True)
    assert words in caught.value.msg + caught.value.details


def test_a_parsed_reply_is_the_reply_reprinted() -> None:
    messy = {
        **REPLY,
        "ips": [{**REPLY["ips"][1], "ip": "FD00:0::B", "cidr": "fd00:0::/64", "gateway": ""}],
        "mac_address": "0A:00:00:53:6B:BB",
        "routes": [{"dst": "192.168.0.101/24", "gw": "172.17.0.254"}, {"gw": "FD00::1"}],
        "dns": None,
    }
    assert parsed(messy, main=True) == {
        "ips": [{"ip": "fd00::b", "cidr": "fd00::/64", "gateway": ""}],
        "mac_address": "0a:00:00:53:6b:bb",
        "mtu": 1400,
        "routes": [{"dst": "192.168.0.0/24", "gw": "172.17.0.254"}, {"gw": "fd00::1"}],
        "dns": {},
    }


@pytest.mark.parametrize(
    ("reply", "words"),
    [
        ({"ips": []}, "no ips"),
        ({"ips": [{"ip": 1}]}, "not an IP address"),
        ("nope", "not a JSON object"),
        ({**REPLY, "ips": [{**REPLY["ips"][0], "cidr": "10.0.0.0/8"}]}, "host address"),
        ({**REPLY, "ips": [{**REPLY["ips"][0], "gateway": "fd00::1"}]}, "family"),
        ({**REPLY, "routes": [{"dst": "10.0.0.0/8"}, {}]}, "neither dst nor gw"),
        ({**REPLY, "routes": [{"gw": "10.0.0.1"}] * 257}, "at most 256"),
        ({**REPLY, "dns": {"nameservers": ["1.1.1.1"], "sortlist": ["x"]}}, "dns"),
    ],
)
def test_an_unusable_reply_is_error_101_naming_the_value(reply: Any, words: str) -> None:
    with pytest.raises(plugin.CniError) as caught:
        parsed(reply)
    assert caught.value.code == plugin.E_BAD_REPLY
    assert words in caught.value.details


@pytest.mark.parametrize(
    ("key", "value", "words"), [("mac_address", "", "MAC"), ("mtu", 10, "MTU")]
)
def test_mac_and_mtu_are_read_only_by_the_main_plugin(key: str, value: Any, words: str) -> None:
    """As an IPAM plugin the calling plugin owns the link and ignores them."""
    assert parsed({**REPLY, key: value})[key] in ("", 0)
    with pytest.raises(plugin.CniError) as caught:
        parsed({**REPLY, key: value}, main=True)
    assert words in caught.value.details


def test_pod_commands_are_argv_lists_of_reprinted_values() -> None:
    result = plugin.build_result(conf("1.0.0", main=True), parsed(REPLY, main=True), ENV)
    commands = plugin.pod_commands("net1", result, 1400)
    assert commands[0] == [
        "link", "set", "dev", "net1", "address", "0a:00:00:53:6b:bb", "mtu", "1400", "up"
    ]  # fmt: skip
    assert ["address", "replace", "fd00::b/64", "dev", "net1", "nodad"] in commands
    assert commands[-1] == ["route", "replace", "::/0", "via", "fd00::1", "dev", "net1"]


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("192.168.0.101/24", "192.168.0.0/24"),
        ("10.1.2.3/32", "10.1.2.3/32"),
        ("0.0.0.0/0", "0.0.0.0/0"),
        ("fd00::1:2/112", "fd00::1:0/112"),
        ("10.0.0.7", "10.0.0.7/32"),
    ],
)
def test_route_destinations_are_made_canonical_for_iproute2(given: str, canonical: str) -> None:
    assert plugin.canonical_cidr(given) == canonical


@pytest.mark.parametrize(
    "bad", ["nope/8", "10.0.0.0/33", "10.0.0.0/x", "10.0.0.0/ 8", "10.0.0.0/8\n"]
)
def test_bad_route_destinations_are_reported(bad: str) -> None:
    with pytest.raises(ValueError, match=r"not an IP address|no prefix length"):
        plugin.canonical_cidr(bad)
