"""Fencing: a writer whose fencing revision is stale cannot change etcd.

The fence is the create_revision of the writer's election key. Once that key
is gone or re-created, every transaction carrying the old fence fails and
the writer is told ``FencedOut`` (stop, do not retry), whatever it believes.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

from ops.lab.etcd import EtcdServer
from store.core.identity import Revision, SubnetName
from store.core.ops import Delete, Put
from store.core.subnetspec import parse_subnet_spec
from store.election import Election
from store.errors import FencedOut
from store.etcd import EtcdClient
from store.leases import Fence, Ipam
from store.subnets import Subnets
from tests.store.helpers import (
    PROVIDER,
    attachment,
    attachment_addresses,
    bitmap_addresses,
    dump,
    lease_addresses,
    ref,
    register,
    request,
)
from tests.store.leader_process import LeaderProcess

pytestmark = pytest.mark.store

TTL = 2  # etcd's minimum lease TTL with default timing


@pytest.fixture
def processes() -> Iterator[list[LeaderProcess]]:
    started: list[LeaderProcess] = []
    yield started
    for process in started:
        process.stop()


def fence_key(client: EtcdClient, prefix: str) -> Fence:
    """A fence on a plain key, created now."""
    key = f"{prefix}election/manual"
    revision = client.put(key, b"me")
    return Fence(key, Revision(revision))


def test_a_valid_fence_writes_and_is_recorded_on_the_lease(
    client: EtcdClient, etcd_prefix: str, ipam: Ipam
) -> None:
    register(client, etcd_prefix, cidr_block="10.0.0.0/24")
    fence = fence_key(client, etcd_prefix)
    [result] = ipam.allocate([request("a")], fence=fence)
    assert attachment(result).fence == fence.revision
    assert [lease.fence for lease in ipam.leases(SubnetName("net1"))] == [fence.revision]


def test_a_recreated_fence_key_fences_out_every_kind_of_write(
    client: EtcdClient, etcd_prefix: str, ipam: Ipam, subnets: Subnets
) -> None:
    register(client, etcd_prefix, cidr_block="10.0.0.0/24")
    register(client, etcd_prefix, "empty", cidr_block="10.9.0.0/24")
    stale = fence_key(client, etcd_prefix)
    ipam.allocate([request("a")], fence=stale)
    # Another term: the key is deleted and created again, with a new create_revision.
    client.txn([], [Delete(stale.key)])
    client.txn([], [Put(stale.key, b"someone else")])
    before = dump(client, etcd_prefix)

    with pytest.raises(FencedOut, match="leadership lost"):
        ipam.allocate([request("b")], fence=stale)
    with pytest.raises(FencedOut):
        ipam.release(ref("a"), fence=stale)
    with pytest.raises(FencedOut):
        subnets.put(
            parse_subnet_spec("net2", provider=PROVIDER, cidr_block="10.1.0.0/24"), fence=stale
        )
    with pytest.raises(FencedOut):
        subnets.delete(SubnetName("empty"), fence=stale)
    assert dump(client, etcd_prefix) == before


def test_a_resigned_leaders_fence_cannot_write(
    client: EtcdClient, etcd_prefix: str, ipam: Ipam
) -> None:
    register(client, etcd_prefix, cidr_block="10.0.0.0/24")
    election = Election(client, etcd_prefix, identity="old-leader", ttl=30)
    fence = election.campaign(timeout=10)
    ipam.allocate([request("a")], fence=fence)
    election.resign()
    before = dump(client, etcd_prefix)
    with pytest.raises(FencedOut):
        ipam.allocate([request("b")], fence=fence)
    assert dump(client, etcd_prefix) == before
    assert ipam.get(ref("b")) is None


def test_a_paused_leader_resumed_after_its_lease_expired_cannot_write(
    etcd_server: EtcdServer,
    client: EtcdClient,
    etcd_prefix: str,
    processes: list[LeaderProcess],
) -> None:
    spec = register(client, etcd_prefix, cidr_block="10.0.0.0/24")
    old = LeaderProcess(etcd_server.endpoint, etcd_prefix, "old-leader", TTL)
    processes.append(old)
    old.expect("LEADER")
    old.send("alloc a1")
    assert old.expect("OK") == "OK a1 10.0.0.2"

    old.signal(signal.SIGSTOP)  # a long GC pause, a frozen VM...
    successor = Election(client, etcd_prefix, identity="new-leader", ttl=TTL)
    new_fence = successor.campaign(timeout=60)  # only once old-leader's lease has expired
    try:
        assert successor.leader() == "new-leader"
        new_ipam = Ipam(client, etcd_prefix)
        assert [
            attachment(r).ip_csv()
            for r in new_ipam.allocate([request("b1"), request("b2")], fence=new_fence)
        ] == ["10.0.0.3", "10.0.0.4"]

        old.signal(signal.SIGCONT)
        # The old leader still holds its cached state and its old fence, and tries.
        old.send("alloc a2")
        refused = old.expect("FENCEDOUT")
        assert "leadership lost" in refused
        assert not any(line.startswith("OK a2") for line in old.output)
        # Its election also tells it, through on_lost, that it no longer leads.
        if "LOST" not in old.output:
            old.expect("LOST")

        assert new_ipam.get(ref("a2")) is None
        stored = attachment_addresses(client, etcd_prefix)
        assert sorted(stored) == ["10.0.0.2", "10.0.0.3", "10.0.0.4"]
        assert lease_addresses(client, etcd_prefix, "net1") == set(stored)
        assert bitmap_addresses(client, etcd_prefix, spec) == set(stored)
    finally:
        successor.resign()
