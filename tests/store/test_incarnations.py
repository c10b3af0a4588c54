"""A pod's incarnations through ``Ipam`` against a real etcd: whose addresses are whose.

The same pod UID asking again gets its attachment back without a write; a
pod recreated under the same name (a new UID) replaces its predecessor only
with proof that it is gone, or adopts its addresses (StatefulSet retention);
a release names the UID it frees; a pod that moved to another subnet leaves
no lease behind; and a new leader re-running a half-done batch keeps what
exists. Each test registers its own subnet under its own prefix and checks
the addresses a user would see and the records etcd holds.
"""

from __future__ import annotations

import pytest

from store.core.keys import Keys
from store.errors import (
    HeldByPredecessor,
    MacInUse,
)
from store.etcd import EtcdClient
from store.leases import UNFENCED, Ipam
from tests.store.helpers import (
    NET1,
    attachment,
    bitmap_addresses,
    ips,
    lease_addresses,
    ref,
    register,
    request,
    store_revision,
)

pytestmark = pytest.mark.store


def test_allocating_again_for_the_same_pod_uid_returns_it_without_a_write(
    client: EtcdClient, etcd_prefix: str, ipam: Ipam
) -> None:
    register(client, etcd_prefix, cidr_block="10.0.0.0/24")
    [first] = ipam.allocate([request("a")], fence=UNFENCED)
    revision = store_revision(client)
    [again] = Ipam(client, etcd_prefix).allocate([request("a")], fence=UNFENCED)
    [third] = ipam.allocate([request("a")], fence=UNFENCED)
    assert again == first == third
    assert store_revision(client) == revision


def test_same_name_with_new_uid_replaces_and_frees_the_old_address(
    client: EtcdClient, etcd_prefix: str, ipam: Ipam
) -> None:
    register(client, etcd_prefix, cidr_block="10.0.0.0/24")
    [old] = ipam.allocate([request("db-0", uid="old", mac="00:00:00:00:00:aa")], fence=UNFENCED)
    [refused] = ipam.allocate([request("db-0", uid="new")], fence=UNFENCED)
    assert isinstance(refused, HeldByPredecessor) and refused.holder == "old"
    [new] = ipam.allocate([request("db-0", uid="new", replaces="old")], fence=UNFENCED)
    assert attachment(new).uid == "new"
    assert attachment(new).ip_csv() != attachment(old).ip_csv()
    assert lease_addresses(client, etcd_prefix, "net1") == {attachment(new).ip_csv()}
    old_mac_key = Keys(etcd_prefix).mac(NET1, attachment(old).mac)
    assert client.get(old_mac_key)[0] is None
    assert ipam.get(ref("db-0")) == new
    [usage] = ipam.usage(NET1)
    assert usage.used == 1


def test_adopt_keeps_the_addresses_for_a_recreated_pod(
    client: EtcdClient, etcd_prefix: str, ipam: Ipam
) -> None:
    register(client, etcd_prefix, cidr_block="10.0.0.0/24,fd00::/120")
    [old] = ipam.allocate([request("db-0", uid="old")], fence=UNFENCED)
    [new] = ipam.allocate([request("db-0", uid="new", adopt=True, replaces="old")], fence=UNFENCED)
    assert attachment(new).uid == "new"
    assert attachment(new).ips == attachment(old).ips
    assert attachment(new).mac == attachment(old).mac
    assert {lease.uid for lease in ipam.leases(NET1)} == {"new"}


def test_release_with_another_uid_keeps_the_successors_addresses(
    client: EtcdClient, etcd_prefix: str, ipam: Ipam
) -> None:
    register(client, etcd_prefix, cidr_block="10.0.0.0/24")
    [current] = ipam.allocate([request("db-0", uid="successor")], fence=UNFENCED)
    assert ipam.release(ref("db-0"), fence=UNFENCED, uid="predecessor") is None  # type: ignore[arg-type]
    assert ipam.get(ref("db-0")) == current


def test_recreated_pod_moved_to_another_subnet_frees_its_old_address(
    client: EtcdClient, etcd_prefix: str, ipam: Ipam
) -> None:
    net1 = register(client, etcd_prefix, cidr_block="10.0.0.0/24")
    register(client, etcd_prefix, "net2", cidr_block="10.1.0.0/24")
    ipam.allocate([request("db-0", uid="old")], fence=UNFENCED)
    # Same pod name, new uid, and its annotation now names net2.
    [moved] = ipam.allocate([request("db-0", "net2", uid="new", replaces="old")], fence=UNFENCED)
    assert attachment(moved).subnet == "net2"
    assert lease_addresses(client, etcd_prefix, "net1") == set()
    assert bitmap_addresses(client, etcd_prefix, net1) == set()
    assert [u.used for u in ipam.usage(NET1)] == [0]


def test_adopting_across_subnets_leaves_no_stray_lease(
    client: EtcdClient, etcd_prefix: str, ipam: Ipam
) -> None:
    register(client, etcd_prefix, cidr_block="10.0.0.0/24")
    register(client, etcd_prefix, "net2", cidr_block="10.1.0.0/24")
    ipam.allocate([request("db-0", uid="old")], fence=UNFENCED)
    ipam.allocate([request("db-0", "net2", uid="new", adopt=True, replaces="old")], fence=UNFENCED)
    ipam.release(ref("db-0"), fence=UNFENCED)
    assert lease_addresses(client, etcd_prefix, "net1") == set()
    assert lease_addresses(client, etcd_prefix, "net2") == set()


def test_a_new_leader_reallocating_a_mixed_batch_keeps_existing_and_adds_new(
    client: EtcdClient, etcd_prefix: str, ipam: Ipam
) -> None:
    """What a restarted controller does: allocate again for every pod it sees."""
    spec = register(client, etcd_prefix, cidr_block="10.0.0.0/24")
    before = ipam.allocate([request("a"), request("b", mac="0a:00:00:00:00:0b")], fence=UNFENCED)
    fresh = Ipam(client, etcd_prefix)  # no cache: it does not know a and b exist
    results = fresh.allocate(
        [
            request("a"),
            request("new-1"),
            request("b", mac="0a:00:00:00:00:0b"),
            request("new-2", mac="0a:00:00:00:00:0b"),  # b's MAC: refused
            request("new-3"),
        ],
        fence=UNFENCED,
    )
    assert results[0] == before[0]
    assert results[2] == before[1]
    assert isinstance(results[3], MacInUse)
    assert ips([results[1], results[4]]) == ["10.0.0.4", "10.0.0.5"]
    assert bitmap_addresses(client, etcd_prefix, spec) == {f"10.0.0.{i}" for i in range(2, 6)}
    assert lease_addresses(client, etcd_prefix, "net1") == {f"10.0.0.{i}" for i in range(2, 6)}


def test_a_replacement_and_new_pods_in_one_call_do_not_collide(
    client: EtcdClient, etcd_prefix: str, ipam: Ipam
) -> None:
    spec = register(client, etcd_prefix, cidr_block="10.0.0.0/29")  # .2 - .6
    ipam.allocate([request("db-0", uid="old"), request("x")], fence=UNFENCED)  # .2 .3
    got = ips(
        ipam.allocate(
            [request("y"), request("db-0", uid="new", replaces="old"), request("w")],
            fence=UNFENCED,
        )
    )
    assert len(set(got)) == 3
    assert not {"10.0.0.2", "10.0.0.3"} & set(got)  # x keeps its; db-0's old one is reused last
    # The replaced pod's old address is free again: a fixed request gets it.
    [fixed] = ipam.allocate([request("z", fixed_ips=("10.0.0.2",))], fence=UNFENCED)
    assert attachment(fixed).ip_csv() == "10.0.0.2"
    stored = {a.ip_csv() for a in ipam.attachments()}
    assert stored == {*got, "10.0.0.2", "10.0.0.3"}
    assert bitmap_addresses(client, etcd_prefix, spec) == stored
