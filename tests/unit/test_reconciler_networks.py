"""Parsing Multus's pod annotations: every form users write, every malformed value refused."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.core.errors import (
    DuplicateInterface,
    InvalidDefaultNetwork,
    InvalidNetworksAnnotation,
)
from reconciler.core.networks import DEFAULT_NETWORK_KEY, NETWORKS_KEY, parse_pod_networks
from store.errors import PermanentError

pytestmark = pytest.mark.unit


def nets(value: str, ns: str = "default") -> list[tuple[str, str, str]]:
    return [
        (s.namespace, s.name, s.interface) for s in parse_pod_networks({NETWORKS_KEY: value}, ns)
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("default/macvlan", [("default", "macvlan", "net1")]),
        ("macvlan", [("team", "macvlan", "net1")]),
        ("default/macvlan@eth9", [("default", "macvlan", "eth9")]),
        ("macvlan@m0", [("team", "macvlan", "m0")]),
        (
            "default/a, b ,other/c@x1",
            [("default", "a", "net1"), ("team", "b", "net2"), ("other", "c", "x1")],
        ),
        # Multus counts position, not unnamed NICs: the second unnamed one is net3.
        ("a@first,b,c", [("team", "a", "first"), ("team", "b", "net2"), ("team", "c", "net3")]),
        ("net.with.dots", [("team", "net.with.dots", "net1")]),
    ],
)
def test_comma_forms_name_namespace_and_interface(value: str, expected: list) -> None:
    assert nets(value, "team") == expected


def test_json_form_carries_ips_mac_and_default_route() -> None:
    value = json.dumps(
        [
            {
                "name": "macvlan",
                "namespace": "default",
                "interface": "m1",
                "ips": ["172.17.0.9/16"],
                "mac": "02:00:00:00:00:09",
                "default-route": ["172.17.0.1"],
            },
            {"name": "other"},
        ]
    )
    first, second = parse_pod_networks({NETWORKS_KEY: value}, "team")
    assert (first.namespace, first.name, first.interface) == ("default", "macvlan", "m1")
    assert first.ips == ("172.17.0.9",)
    assert first.mac == "02:00:00:00:00:09"
    assert first.default_route == ("172.17.0.1",)
    assert (second.namespace, second.name, second.interface) == ("team", "other", "net2")
    assert second.default_route == ()


def test_seed_default_route_example_parses() -> None:
    value = """[{
      "name": "macvlan",
      "namespace": "default",
      "default-route": ["172.17.0.1"]
    }]"""
    (sel,) = parse_pod_networks({NETWORKS_KEY: value}, "default")
    assert sel.interface == "net1"
    assert sel.default_route == ("172.17.0.1",)


def test_default_network_is_eth0_and_comes_first() -> None:
    found = parse_pod_networks(
        {DEFAULT_NETWORK_KEY: "default/macvlan", NETWORKS_KEY: "default/other"}, "default"
    )
    assert [(s.name, s.interface, s.is_default_network) for s in found] == [
        ("macvlan", "eth0", True),
        ("other", "net1", False),
    ]


def test_no_annotations_no_networks() -> None:
    assert parse_pod_networks({}, "default") == []
    assert parse_pod_networks({NETWORKS_KEY: "  "}, "default") == []


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("default/macvlan,", "empty network name"),
        ("a/b/c", "more than one '/'"),
        ("a@b@c", "more than one '@'"),
        ("Default/macvlan", "not a valid namespace"),
        ("default/Mac_vlan", "not a valid NetworkAttachmentDefinition name"),
        ("default/macvlan@", "not a valid interface name"),
        ("default/macvlan@waytoolonginterface0", "not a valid interface name"),
        ('[{"name": "macvlan", "interface": "net1@x"}]', "not a valid interface name"),
        ('[{"name": "macvlan", "interface": "net1;reboot"}]', "not a valid interface name"),
        ('[{"name": "macvlan", "interface": "eth\\u00e9"}]', "not a valid interface name"),
        ('[{"name": "x"', "not valid JSON"),
        ("[1]", "must be an object"),
        ('[{"namespace": "default"}]', "has no 'name'"),
        ('[{"name": 3}]', "must be a string"),
        ('[{"name": "x", "ips": "10.0.0.1"}]', "list of strings"),
        ('[{"name": "x", "ips": ["ten"]}]', "not an IP address"),
        ('[{"name": "x", "default-route": ["gw"]}]', "not an IP address"),
        ('[{"name": ""}]', "must not be empty"),
    ],
)
def test_malformed_networks_are_refused_with_a_clear_message(value: str, message: str) -> None:
    with pytest.raises(InvalidNetworksAnnotation, match=message) as caught:
        parse_pod_networks({NETWORKS_KEY: value}, "default")
    assert caught.value.reason == "InvalidNetworksAnnotation"


def test_same_interface_twice_is_refused() -> None:
    with pytest.raises(DuplicateInterface, match="requested twice"):
        parse_pod_networks({NETWORKS_KEY: "a@net2,b"}, "default")


def test_same_nad_twice_gets_two_interfaces() -> None:
    assert nets("default/macvlan,default/macvlan@second") == [
        ("default", "macvlan", "net1"),
        ("default", "macvlan", "second"),
    ]


@pytest.mark.parametrize("value", ["a,b", '[{"name": "a"}, {"name": "b"}]', "bad/x/y", ""])
def test_default_network_names_exactly_one(value: str) -> None:
    if not value:
        assert parse_pod_networks({DEFAULT_NETWORK_KEY: value}, "default") == []
        return
    with pytest.raises(InvalidDefaultNetwork):
        parse_pod_networks({DEFAULT_NETWORK_KEY: value}, "default")


@given(st.text(max_size=60))
def test_any_text_either_parses_or_is_a_permanent_error(value: str) -> None:
    try:
        found = parse_pod_networks({NETWORKS_KEY: value, DEFAULT_NETWORK_KEY: value}, "default")
    except PermanentError as exc:
        assert str(exc)
    else:
        assert len({s.interface for s in found}) == len(found)


names = st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True)


@given(st.lists(st.tuples(names, names), min_size=1, max_size=6))
def test_comma_and_json_forms_agree(pairs: list[tuple[str, str]]) -> None:
    comma = ",".join(f"{ns}/{name}" for ns, name in pairs)
    doc = json.dumps([{"name": name, "namespace": ns} for ns, name in pairs])
    assert nets(comma) == nets(doc)
    assert [i for _, _, i in nets(comma)] == [f"net{n}" for n in range(1, len(pairs) + 1)]
