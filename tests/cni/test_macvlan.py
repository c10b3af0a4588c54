"""The seed's macvlan NetworkAttachmentDefinition, run by the real macvlan plugin.

macvlan (CNI reference plugins) runs in a test "host" namespace whose veth
end stands in for the seed's ``eth0``; it execs ``kube-ovn`` as its IPAM
plugin with the whole config on stdin; ``kube-ovn`` asks the real agent,
which reads the lease the store wrote to the real etcd. The config is the
seed's, verbatim apart from ``master`` (``server_socket`` included: the
plugins run in a mount namespace that shows the agent's socket directory at
/run/openvswitch).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from ops.lab.cni import AgentProcess
from ops.lab.examples import seed_nad_config
from ops.lab.netns import MASTER, Lab
from tests.cni.conftest import Leases, Runner

pytestmark = pytest.mark.cni


def seed_config(version: str | None = None, **changes: Any) -> dict[str, Any]:
    doc = seed_nad_config(master=MASTER)
    doc["name"] = "macvlan"  # Multus adds the NAD's name when the config has none
    if version:
        doc["cniVersion"] = version
    doc.update(changes)
    return doc


def test_seed_config_puts_the_leased_address_on_net1(run: Runner, leases: Leases) -> None:
    leases.seed_subnet()
    att = leases.allocate("samplepod", "macvlan.default")
    added = run("ADD", seed_config())
    assert added.ok, added.stdout + added.stderr
    assert run.pod.addresses("net1") == [f"{att.ips[0].ip}/16"]
    assert added.doc["cniVersion"] == "0.3.0"
    assert added.doc["ips"][0] == {"version": "4", "address": f"{att.ips[0].ip}/16", "interface": 0}
    # A secondary NIC must not steal the pod's default route.
    assert run.pod.default_route() is None
    deleted = run("DEL", seed_config())
    assert deleted.ok, deleted.stdout
    assert "net1" not in run.pod.links()
    again = run("DEL", seed_config())
    assert again.ok, again.stdout


@pytest.mark.parametrize("version", ["0.4.0", "1.0.0"])
def test_check_passes_for_the_lease_and_fails_once_it_moves(
    run: Runner, leases: Leases, version: str
) -> None:
    leases.seed_subnet()
    att = leases.allocate("samplepod", "macvlan.default")
    added = run("ADD", seed_config(version))
    assert added.ok, added.stdout
    checked = run("CHECK", seed_config(version, prevResult=added.doc))
    assert checked.ok, checked.stdout + checked.stderr
    moved = json.loads(json.dumps(added.doc))
    moved["ips"][0]["address"] = "172.17.9.9/16"
    refused = run("CHECK", seed_config(version, prevResult=moved))
    assert not refused.ok
    # macvlan passes kube-ovn's own error through: 100, the lease moved (never
    # 999, an unexpected failure, which must not count as the right answer).
    assert refused.doc["code"] == 100, refused.doc
    assert refused.doc["msg"] == f"lease {att.ips[0].ip}/16 is not in prevResult"
    assert run("DEL", seed_config(version)).ok


def test_mac_from_the_networks_annotation_reaches_net1(run: Runner, leases: Leases) -> None:
    """Multus passes ``"mac"`` of the networks JSON as CNI_ARGS MAC=; macvlan applies it."""
    leases.seed_subnet()
    att = leases.allocate("samplepod", "macvlan.default", mac="00:00:00:53:6b:bb")
    added = run("ADD", seed_config(), extra_args={"MAC": att.mac})
    assert added.ok, added.stdout
    assert run.pod.mac("net1") == "00:00:00:53:6b:bb"
    assert run.pod.addresses("net1") == [f"{att.ips[0].ip}/16"]


def test_default_route_through_the_macvlan_nic(run: Runner, leases: Leases) -> None:
    """networks: [{"name": "macvlan", "default-route": ["172.17.0.1"]}]."""
    leases.seed_subnet()
    leases.allocate("samplepod", "macvlan.default", default_route=True)
    added = run("ADD", seed_config())
    assert added.ok, added.stdout
    route = run.pod.default_route()
    assert route is not None
    assert (route["gateway"], route["dev"]) == ("172.17.0.1", "net1")


def test_macvlan_as_the_main_nic(run: Runner, leases: Leases) -> None:
    """v1.multus-cni.io/default-network: default/macvlan -> eth0 with the default route."""
    leases.seed_subnet()
    att = leases.allocate("samplepod", "macvlan.default", interface="eth0")
    added = run("ADD", seed_config(), ifname="eth0")
    assert added.ok, added.stdout
    assert run.pod.addresses("eth0") == [f"{att.ips[0].ip}/16"]
    route = run.pod.default_route()
    assert route is not None
    assert (route["gateway"], route["dev"]) == ("172.17.0.1", "eth0")
    assert run("DEL", seed_config(), ifname="eth0").ok
    assert "eth0" not in run.pod.links()


def test_del_succeeds_when_the_agent_and_the_netns_are_gone(
    run: Runner, leases: Leases, agent: AgentProcess, lab: Lab
) -> None:
    leases.seed_subnet()
    leases.allocate("samplepod", "macvlan.default")
    assert run("ADD", seed_config()).ok
    agent.stop()
    assert run("DEL", seed_config()).ok
    lab.namespaces.remove(run.pod)
    from ops.lab.netns import ip

    ip("netns", "del", run.pod.name)
    gone = run("DEL", seed_config())
    assert gone.ok, gone.stdout + gone.stderr


def test_dual_stack_lease_puts_both_families_on_net1(run: Runner, leases: Leases) -> None:
    leases.subnet("dual", "172.18.0.0/24,fd00:18::/120", "macvlan.default", "172.18.0.1,fd00:18::1")
    att = leases.allocate("samplepod", "macvlan.default", subnet="dual", default_route=True)
    added = run("ADD", seed_config("1.0.0"))
    assert added.ok, added.stdout + added.stderr
    v4 = next(i.ip for i in att.ips if i.family == 4)
    v6 = next(i.ip for i in att.ips if i.family == 6)
    assert f"{v4}/24" in run.pod.addresses("net1")
    assert f"{v6}/120" in run.pod.addresses("net1")
    assert [r["gw"] for r in added.doc["routes"]] == ["172.18.0.1", "fd00:18::1"]
    assert run("DEL", seed_config("1.0.0")).ok
