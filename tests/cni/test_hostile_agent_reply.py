"""A hostile agent reply: CNI error 101, and nothing runs.

The plugin runs as root; the agent that answers it (or any process that got
to listen on the socket a NAD names) is input like the NAD itself. A
:class:`RogueAgent` answers ADD with one canned reply; every field the main
plugin would hand to ``ip`` (addresses, prefix, gateway, MAC, MTU, routes)
carries ``ip -batch`` lines, or is of the wrong type or out of range. The
plugin must answer 101 (unusable agent reply) and leave the lab as it was.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from ops.lab.netns import Lab
from tests.cni.conftest import Runner
from tests.cni.hostile import NodeState, RogueAgent, Smuggled, assert_refused
from tests.cni.test_main_plugin import attachnet

pytestmark = pytest.mark.cni

E_BAD_REPLY = 101

GOOD: dict[str, Any] = {
    "ips": [
        {"protocol": "IPv4", "ip": "172.17.0.20", "cidr": "172.17.0.0/16", "gateway": "172.17.0.1"}
    ],
    "mac_address": "0a:58:ac:11:00:14",
    "routes": [{"dst": "192.0.2.0/24", "gw": "172.17.0.254"}],
    "mtu": 1400,
    "nicname": "net1",
    "dns": {},
}


def ip_field(key: str, value: Any) -> dict[str, Any]:
    return {**GOOD, "ips": [{**GOOD["ips"][0], key: value}]}


def route_field(key: str, value: Any) -> dict[str, Any]:
    return {**GOOD, "routes": [{**GOOD["routes"][0], key: value}]}


Reply = Callable[[Smuggled], dict[str, Any]]
CASES: dict[str, Reply] = {
    "ip-smuggled": lambda s: ip_field("ip", f"172.17.0.20/16 dev net1{s.lines}"),
    "ip-not-an-address": lambda s: ip_field("ip", "172.17.0.300"),
    "ip-outside-its-cidr": lambda s: ip_field("ip", "10.9.9.9"),
    "ip-family-differs-from-cidr": lambda s: ip_field("ip", "fd00::14"),
    "ip-network-address": lambda s: ip_field("ip", "172.17.0.0"),
    "cidr-smuggled": lambda s: ip_field("cidr", f"172.17.0.0/16 dev net1{s.lines}"),
    "cidr-prefix-too-long": lambda s: ip_field("cidr", "172.17.0.0/33"),
    "cidr-prefix-spaces": lambda s: ip_field("cidr", "172.17.0.0/ 16"),
    "gateway-smuggled": lambda s: ip_field("gateway", f"172.17.0.1 dev net1{s.lines}"),
    "gateway-other-family": lambda s: ip_field("gateway", "fd00::1"),
    "mac-smuggled": lambda s: {**GOOD, "mac_address": f"0a:58:ac:11:00:14{s.lines}"},
    "mac-five-octets": lambda s: {**GOOD, "mac_address": "0a:58:ac:11:00"},
    "mac-multicast": lambda s: {**GOOD, "mac_address": "01:00:5e:00:00:01"},
    "mac-missing": lambda s: {**GOOD, "mac_address": ""},
    "mtu-smuggled": lambda s: {**GOOD, "mtu": f"1400{s.lines}"},
    "mtu-string": lambda s: {**GOOD, "mtu": "1400"},
    "mtu-negative": lambda s: {**GOOD, "mtu": -1},
    "mtu-huge": lambda s: {**GOOD, "mtu": 10**12},
    "route-gw-smuggled": lambda s: route_field("gw", f"172.17.0.254 dev net1 onlink{s.lines}"),
    "route-dst-smuggled": lambda s: route_field("dst", f"192.0.2.0/24{s.lines}"),
    "route-families-mixed": lambda s: route_field("gw", "fd00::fe"),
    "route-not-an-object": lambda s: {**GOOD, "routes": ["192.0.2.0/24 via 172.17.0.254"]},
    "ips-empty": lambda s: {**GOOD, "ips": []},
    "ips-not-a-list": lambda s: {**GOOD, "ips": {"ip": "172.17.0.20"}},
    "dns-not-an-object": lambda s: {**GOOD, "dns": f"nameserver 1.1.1.1{s.lines}"},
    "dns-nameserver-smuggled": lambda s: {**GOOD, "dns": {"nameservers": [f"1.1.1.1{s.lines}"]}},
}


def test_a_good_reply_from_the_same_rogue_agent_is_applied(run: Runner, lab: Lab) -> None:
    """The control: the harness does reach ``ip``, so a refusal below is the plugin's."""
    with RogueAgent(GOOD) as rogue:
        added = run("ADD", attachnet("1.0.0", server_socket=str(rogue.socket)), plugin="kube-ovn")
    assert added.ok, added.stdout + added.stderr
    assert run.pod.addresses("net1") == ["172.17.0.20/16"]
    assert run.pod.mac("net1") == GOOD["mac_address"]


@pytest.mark.parametrize("case", list(CASES))
def test_a_hostile_reply_is_refused_and_nothing_runs(
    run: Runner, lab: Lab, smuggled: Smuggled, case: str
) -> None:
    before = NodeState.of(lab)
    with RogueAgent(CASES[case](smuggled)) as rogue:
        out = run("ADD", attachnet("1.0.0", server_socket=str(rogue.socket)), plugin="kube-ovn")
    assert smuggled.traces(lab) == []
    assert_refused(out, E_BAD_REPLY)
    assert before.changes(lab) == []


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"not json", id="not-json"),
        pytest.param(b"[" * 100_000, id="nested-deeply"),
        pytest.param(b" " * (2 << 20) + json.dumps(GOOD).encode(), id="larger-than-1MiB"),
    ],
)
def test_an_unreadable_reply_is_refused_and_nothing_runs(
    run: Runner, lab: Lab, body: bytes
) -> None:
    before = NodeState.of(lab)
    with RogueAgent(body) as rogue:
        out = run("ADD", attachnet("1.0.0", server_socket=str(rogue.socket)), plugin="kube-ovn")
    assert_refused(out, E_BAD_REPLY)
    assert before.changes(lab) == []
