"""``kube-ovn`` as the main plugin (a ``.ovn`` provider) and a bridge-plugin NAD.

As a main plugin there is no OVN datapath in nicpool: the plugin builds a
veth pair, puts the leased IP, MAC and routes (the seed's routes annotation)
on the pod end and attaches the host end to the Linux bridge named by
``"bridge"``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from ops.lab.netns import Lab, ip
from tests.cni.conftest import Leases, Runner

pytestmark = pytest.mark.cni

SEED_ATTACHNET_NAD = """{
      "cniVersion": "0.3.0",
      "type": "kube-ovn",
      "server_socket": "/run/openvswitch/kube-ovn-daemon.sock",
      "provider": "attachnet.default.ovn"
    }"""
SEED_ROUTES = [{"dst": "192.168.0.101/24", "gw": "172.17.0.254"}, {"gw": "172.17.0.254"}]


def attachnet(version: str | None = None, **changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(SEED_ATTACHNET_NAD)
    doc["name"] = "attachnet"
    doc["bridge"] = "br-nicpool"
    if version:
        doc["cniVersion"] = version
    doc.update(changes)
    return doc


def test_main_plugin_builds_the_nic_with_the_routes_annotation(
    run: Runner,
    leases: Leases,
    lab: Lab,
) -> None:
    leases.seed_subnet("attachnet.default.ovn", name="attachnet")
    att = leases.allocate(
        "samplepod", "attachnet.default.ovn", subnet="attachnet", routes=SEED_ROUTES
    )
    added = run("ADD", attachnet(), plugin="kube-ovn")
    assert added.ok, added.stdout + added.stderr
    assert run.pod.addresses("net1") == [f"{att.ips[0].ip}/16"]
    assert run.pod.mac("net1") == att.mac
    routes = {(r["dst"], r.get("gateway")) for r in run.pod.routes()}
    assert ("192.168.0.0/24", "172.17.0.254") in routes
    assert ("default", "172.17.0.254") in routes
    assert lab.host is not None
    bridged = lab.host.ip_json("link", "show", "master", "br-nicpool")
    assert len(bridged) == 1
    assert added.doc["interfaces"][0]["mac"] == att.mac

    deleted = run("DEL", attachnet(), plugin="kube-ovn")
    assert deleted.ok, deleted.stdout
    assert "net1" not in run.pod.links()
    assert lab.host.ip_json("link", "show", "master", "br-nicpool") == []
    assert run("DEL", attachnet(), plugin="kube-ovn").ok


@pytest.mark.parametrize("version", ["0.4.0", "1.0.0", "1.1.0"])
def test_main_plugin_check_sees_a_removed_address(
    run: Runner,
    leases: Leases,
    version: str,
) -> None:
    leases.seed_subnet("attachnet.default.ovn", name="attachnet")
    att = leases.allocate("samplepod", "attachnet.default.ovn", subnet="attachnet")
    added = run("ADD", attachnet(version), plugin="kube-ovn")
    assert added.ok, added.stdout + added.stderr
    assert run("CHECK", attachnet(version, prevResult=added.doc), plugin="kube-ovn").ok
    ip("addr", "del", f"{att.ips[0].ip}/16", "dev", "net1", netns=run.pod.name)
    broken = run("CHECK", attachnet(version, prevResult=added.doc), plugin="kube-ovn")
    assert not broken.ok
    assert broken.doc["code"] == 100
    assert att.ips[0].ip in broken.doc["msg"]


def test_main_plugin_as_the_pods_eth0_takes_the_default_route(
    run: Runner,
    leases: Leases,
) -> None:
    leases.seed_subnet("attachnet.default.ovn", name="attachnet")
    leases.allocate("samplepod", "attachnet.default.ovn", subnet="attachnet", interface="eth0")
    added = run("ADD", attachnet("1.0.0"), plugin="kube-ovn", ifname="eth0")
    assert added.ok, added.stdout + added.stderr
    route = run.pod.default_route()
    assert route is not None
    assert (route["gateway"], route["dev"]) == ("172.17.0.1", "eth0")


def test_a_bridge_plugin_nad_uses_kube_ovn_ipam(
    run: Runner,
    leases: Leases,
    lab: Lab,
) -> None:
    leases.seed_subnet("bridgenet.default", name="bridgenet")
    att = leases.allocate("samplepod", "bridgenet.default", subnet="bridgenet")
    config = {
        "cniVersion": "1.0.0",
        "name": "bridgenet",
        "type": "bridge",
        "bridge": "br-attach",
        "ipam": {
            "type": "kube-ovn",
            "server_socket": "/run/openvswitch/kube-ovn-daemon.sock",
            "provider": "bridgenet.default",
        },
    }
    added = run("ADD", config, plugin="bridge")
    assert added.ok, added.stdout + added.stderr
    assert run.pod.addresses("net1") == [f"{att.ips[0].ip}/16"]
    assert lab.host is not None
    assert len(lab.host.ip_json("link", "show", "master", "br-attach")) == 1
    assert run("CHECK", {**config, "prevResult": added.doc}, plugin="bridge").ok
    assert run("DEL", config, plugin="bridge").ok
    assert "net1" not in run.pod.links()
    assert run("DEL", config, plugin="bridge").ok


def test_a_nad_cannot_join_a_bridge_the_node_does_not_allow(
    run: Runner, leases: Leases, lab: Lab
) -> None:
    """Any namespace user may write a NAD; ``"bridge": "cni0"`` (or another tenant's
    bridge) would put their pod on that layer-2 network. The node's agent decides
    (``--bridges``); a bridge it does not allow is refused before anything is built."""
    leases.seed_subnet("attachnet.default.ovn", name="attachnet")
    leases.allocate("samplepod", "attachnet.default.ovn", subnet="attachnet")
    assert lab.host is not None
    ip("link", "add", "br-tenant-a", "type", "bridge", netns=lab.host.name)
    before = lab.host.ip_json("link", "show")
    refused = run("ADD", attachnet(bridge="br-tenant-a"), plugin="kube-ovn")
    assert not refused.ok
    assert refused.doc["code"] == 7, refused.doc
    assert "bridge br-tenant-a may not be joined on this node" in refused.doc["msg"]
    assert lab.host.ip_json("link", "show") == before
    assert lab.host.ip_json("link", "show", "master", "br-tenant-a") == []
    assert run.pod.links() == ["lo"]
