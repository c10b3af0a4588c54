"""A claim-owned NIC through the real macvlan plugin, on two "nodes" (issue 12).

A live migration runs the VM's source pod on one node and its target pod on
another at once. Each node here is a host namespace with its own macvlan
master and its own agent; the leases are written through the store as the
controller writes them for an IPAMClaim (the target joins the claim). The
agent looks leases up by the pod's own name and NIC, so the target, a pod
of another name, must find the claim's address and MAC too; once the source
has left, its name finds nothing while the target keeps working.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ops.lab import netns
from ops.lab.cni import AgentProcess
from ops.lab.etcd import EtcdServer
from store.core.identity import IPAMCLAIM, AttachmentRef, OwnerRef, PodRef, PodUID, Provider
from store.leases import UNFENCED
from tests.cni.conftest import Leases, Runner
from tests.cni.test_macvlan import seed_config

pytestmark = pytest.mark.cni

CLAIM = OwnerRef(IPAMCLAIM, "default", "vm1.data")
SOURCE, TARGET = "virt-launcher-vm1-src12", "virt-launcher-vm1-dst34"


@pytest.fixture
def second_node(
    netns_ready: None, etcd_server: EtcdServer, etcd_prefix: str
) -> Iterator[tuple[netns.Lab, AgentProcess]]:
    """Another node: its own host namespace, macvlan master and agent."""
    with (
        netns.Lab() as lab,
        AgentProcess(etcd_server.endpoint, etcd_prefix, lease_wait=2.0) as agent,
    ):
        yield lab, agent


def test_the_migration_target_gets_the_claims_address_and_mac_on_its_node(
    lab: netns.Lab,
    agent: AgentProcess,
    second_node: tuple[netns.Lab, AgentProcess],
    cni_path: list[Path],
    leases: Leases,
) -> None:
    leases.seed_subnet()
    claim = {"owner": CLAIM, "owner_uid": "claim-uid"}
    source = leases.allocate(SOURCE, "macvlan.default", uid="src-uid", **claim)
    on_source = Runner(lab, agent, cni_path, lab.pod("src"))
    added = on_source("ADD", seed_config("1.0.0"), name=SOURCE, extra_args={"MAC": source.mac})
    assert added.ok, added.stdout + added.stderr
    address = f"{source.ips[0].ip}/16"
    assert on_source.pod.addresses("net1") == [address]

    node2, agent2 = second_node
    target = leases.allocate(TARGET, "macvlan.default", uid="dst-uid", **claim)
    assert (target.ips, target.mac) == (source.ips, source.mac)
    on_target = Runner(node2, agent2, cni_path, node2.pod("dst"))
    args = {"MAC": target.mac, "K8S_POD_UID": "dst-uid"}
    moved = on_target("ADD", seed_config("1.0.0"), name=TARGET, extra_args=args)
    assert moved.ok, moved.stdout + moved.stderr
    assert on_target.pod.addresses("net1") == [address]
    assert on_target.pod.mac("net1") == on_source.pod.mac("net1") == source.mac

    # The migration completes: the source pod goes; the target keeps the address.
    ref = AttachmentRef(PodRef("default", SOURCE), Provider("macvlan.default"))
    assert leases.ipam.leave(ref, fence=UNFENCED, uid=PodUID("src-uid")) is not None
    assert on_source("DEL", seed_config("1.0.0"), name=SOURCE).ok
    checked = on_target(
        "CHECK", seed_config("1.0.0", prevResult=moved.doc), name=TARGET, extra_args=args
    )
    assert checked.ok, checked.stdout + checked.stderr
    again = on_source("ADD", seed_config("1.0.0"), name=SOURCE)
    assert not again.ok and again.doc["code"] == 11  # no lease for the source any more
