"""Hostile NAD values and CNI environments: CNI error JSON, and nothing runs.

Anyone who may write a NetworkAttachmentDefinition in one namespace chooses
every key of the ``kube-ovn`` config, and the pod's networks annotation
chooses the interface name Multus passes as CNI_IFNAME; the plugin runs as
root and, as a main plugin, runs ``ip`` inside the pod's netns. Each case
here is the real plugin, installed as a node holds it, exec'd as the main
plugin (the path that runs commands) in the lab with a lease ready in the
real etcd and the real agent answering, so a value that slipped through
would reach ``ip``. Each value carries ``ip -batch`` lines that would add a
network namespace, touch a file and add a veth pair; the test asserts the
CNI error code, that none of those traces exist, and that the lab's
namespaces, links, addresses and routes are what they were.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from ops.lab.netns import MASTER, Lab, ip
from tests.cni.conftest import Leases, Runner
from tests.cni.hostile import NodeState, Smuggled, assert_refused
from tests.cni.test_main_plugin import attachnet

pytestmark = pytest.mark.cni

E_INVALID_ENV, E_INVALID_CONFIG = 4, 7


@pytest.fixture
def leased(leases: Leases) -> None:
    leases.seed_subnet("attachnet.default.ovn", name="attachnet")
    leases.allocate("samplepod", "attachnet.default.ovn", subnet="attachnet")


Hostile = Callable[[Smuggled], Any]
GW, DST = "172.17.0.254", "192.0.2.0/24"

ROUTE_GW: list[Hostile] = [
    lambda s: f"{GW} dev net1 onlink{s.lines}",
    lambda s: f"{GW}{s.lines}",
    lambda s: f"{GW} dev lo",
    lambda s: f"{GW}\tdev\tlo",
    lambda s: f"{GW}; touch {s.marker}",
    lambda s: f"$(touch {s.marker})",
    lambda s: f"`touch {s.marker}`",
    lambda s: f"{GW}|touch {s.marker}",
    lambda s: 172,
    lambda s: "fe80::1%net1",
]
ROUTE_DST: list[Hostile] = [
    lambda s: f"{DST} via {GW} dev net1{s.lines}",
    lambda s: f"{DST}{s.lines}",
    lambda s: f"{DST}\n",
    lambda s: f"{DST} dev lo",
    lambda s: "192.0.2.0/ 24",
    lambda s: "192.0.2.0/\u0662\u0664",  # Arabic-Indic digits: int() takes them
    lambda s: ["192.0.2.0/24"],
]
BRIDGE: list[Hostile] = [
    lambda s: "br x",
    lambda s: f"br0{s.lines}",
    lambda s: "b" * 16,
    lambda s: "br/0",
    lambda s: "br:0",
    lambda s: "..",
    lambda s: "br%d",
    lambda s: ["br0"],
]
MTU: list[Hostile] = [
    lambda s: "1500",
    lambda s: -1,
    lambda s: 67,
    lambda s: 10**9,
    lambda s: True,
    lambda s: 1400.5,
]
PROVIDER: list[Hostile] = [
    lambda s: f"attachnet.default.ovn{s.lines}",
    lambda s: "attachnet.default.ovn dev lo",
    lambda s: "../../attachnet.default.ovn",
    lambda s: "a" * 300 + ".default.ovn",
    lambda s: 5,
]
SERVER_SOCKET: list[Hostile] = [
    lambda s: "kube-ovn-daemon.sock",
    lambda s: "/run/openvswitch/kube-ovn-daemon.sock\n",
    lambda s: "/run/openvswitch/../openvswitch/kube-ovn-daemon.sock",
    lambda s: "/run/" + "a" * 120 + ".sock",
    lambda s: ["/run/openvswitch/kube-ovn-daemon.sock"],
]


def nad_with(field: str, value: Any) -> dict[str, Any]:
    doc = attachnet("1.0.0", routes=[{"dst": DST, "gw": GW}])
    if field in ("gw", "dst"):
        doc["routes"] = [{"dst": DST, "gw": GW, field: value}]
    else:
        doc[field] = value
    return doc


def cases(field: str, values: list[Hostile]) -> list[Any]:
    return [pytest.param(field, value, id=f"{field}-{i}") for i, value in enumerate(values)]


NAD_CASES = [
    *cases("gw", ROUTE_GW),
    *cases("dst", ROUTE_DST),
    *cases("bridge", BRIDGE),
    *cases("mtu", MTU),
    *cases("provider", PROVIDER),
    *cases("server_socket", SERVER_SOCKET),
]


def test_the_snapshot_sees_what_an_add_changes(run: Runner, lab: Lab, leased: None) -> None:
    """The checker itself: a benign ADD of the same NAD is a visible change."""
    before = NodeState.of(lab)
    added = run("ADD", nad_with("gw", GW), plugin="kube-ovn")
    assert added.ok, added.stdout + added.stderr
    changes = before.changes(lab)
    assert any("link new: ('net1'" in change for change in changes), changes
    assert any("route new" in change and "192.0.2.0/24" in change for change in changes)


@pytest.mark.usefixtures("leased")
@pytest.mark.parametrize(("field", "hostile"), NAD_CASES)
def test_a_hostile_nad_value_is_refused_and_nothing_runs(
    run: Runner, lab: Lab, smuggled: Smuggled, field: str, hostile: Hostile
) -> None:
    before = NodeState.of(lab)
    out = run("ADD", nad_with(field, hostile(smuggled)), plugin="kube-ovn")
    assert smuggled.traces(lab) == []
    assert_refused(out, E_INVALID_CONFIG)
    assert before.changes(lab) == []


def test_a_bridge_that_names_another_kind_of_link_is_refused_untouched(
    run: Runner, lab: Lab, leased: None
) -> None:
    """``"bridge": "<the node's uplink>"`` must not bring it up or enslave anything to it."""
    assert lab.host is not None
    ip("link", "add", "npother0", "type", "veth", "peer", "name", "npother1", netns=lab.host.name)
    before = NodeState.of(lab)
    for name in ("npother0", MASTER):
        out = run("ADD", nad_with("bridge", name), plugin="kube-ovn")
        assert_refused(out, E_INVALID_CONFIG)
        assert name in out.doc["msg"]
    assert before.changes(lab) == []


def test_a_hostile_route_in_an_ipam_section_fails_macvlan_cleanly(
    run: Runner, lab: Lab, leases: Leases, smuggled: Smuggled
) -> None:
    """macvlan (1.1.1) leaves its own link behind when its IPAM plugin fails;
    the DEL a runtime sends after a failed ADD, same config, removes it."""
    leases.seed_subnet()
    leases.allocate("samplepod", "macvlan.default")
    ipam = {
        "type": "kube-ovn",
        "server_socket": "/run/openvswitch/kube-ovn-daemon.sock",
        "provider": "macvlan.default",
        "routes": [{"dst": DST, "gw": f"{GW}{smuggled.lines}"}],
    }
    config = {"cniVersion": "1.0.0", "name": "macvlan", "type": "macvlan", "master": MASTER}
    before = NodeState.of(lab)
    out = run("ADD", {**config, "ipam": ipam})
    assert smuggled.traces(lab) == []
    assert_refused(out, E_INVALID_CONFIG)
    assert run("DEL", {**config, "ipam": ipam}).ok
    assert before.changes(lab) == []


@pytest.mark.usefixtures("leased")
def test_del_cleans_up_after_a_nad_edit_made_it_hostile(run: Runner, smuggled: Smuggled) -> None:
    """DEL uses neither routes, dns, bridge nor mtu: a bad one does not stop it."""
    added = run("ADD", nad_with("gw", GW), plugin="kube-ovn")
    assert added.ok, added.stdout + added.stderr
    assert "net1" in run.pod.links()
    edited = nad_with("gw", f"{GW}{smuggled.lines}")
    edited.update(mtu="1500", bridge="br x", dns={"nameservers": "x"})
    deleted = run("DEL", edited, plugin="kube-ovn")
    assert deleted.ok, deleted.stdout + deleted.stderr
    assert "net1" not in run.pod.links()
    assert run("ADD", edited, plugin="kube-ovn").doc["code"] == E_INVALID_CONFIG


ENV_CASES: list[tuple[str, Hostile]] = [
    ("CNI_IFNAME", lambda s: f"net1{s.lines}"),
    ("CNI_IFNAME", lambda s: "net 1"),
    ("CNI_IFNAME", lambda s: "net1\t"),
    ("CNI_IFNAME", lambda s: "net:1"),
    ("CNI_IFNAME", lambda s: "net/1"),
    ("CNI_IFNAME", lambda s: ".."),
    ("CNI_IFNAME", lambda s: "net%d"),
    ("CNI_IFNAME", lambda s: "n\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9t1"),  # 10 chars, 17 bytes
    ("CNI_NETNS", lambda s: "var/run/netns/relative"),
    ("CNI_NETNS", lambda s: f"/var/run/netns/x{s.lines}"),
    ("CNI_CONTAINERID", lambda s: f"c1; touch {s.marker}"),
    ("CNI_CONTAINERID", lambda s: f"c1{s.lines}"),
    ("CNI_CONTAINERID", lambda s: "../../c1"),
    ("CNI_CONTAINERID", lambda s: "-c1"),
]


@pytest.mark.parametrize(
    ("variable", "hostile"),
    [pytest.param(var, value, id=f"{var}-{i}") for i, (var, value) in enumerate(ENV_CASES)],
)
@pytest.mark.usefixtures("leased")
def test_a_hostile_cni_environment_is_refused_and_nothing_runs(
    run: Runner, lab: Lab, smuggled: Smuggled, variable: str, hostile: Hostile
) -> None:
    before = NodeState.of(lab)
    out = run("ADD", nad_with("gw", GW), plugin="kube-ovn", env={variable: hostile(smuggled)})
    assert smuggled.traces(lab) == []
    assert_refused(out, E_INVALID_ENV)
    assert variable in out.doc["msg"]
    assert before.changes(lab) == []


def test_the_refusal_is_json_a_runtime_can_read(run: Runner, leased: None) -> None:
    out = run("ADD", nad_with("gw", f"{GW} dev lo"), plugin="kube-ovn")
    assert json.loads(out.stdout) == out.doc
    assert out.doc["cniVersion"] == "1.0.0"
    assert "gw" in out.doc["msg"] + out.doc.get("details", "")
