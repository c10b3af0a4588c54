"""Addresses owned by an IPAMClaim or a VM's NIC, on a real etcd.

What a VM user notices, at the store's level: the claim's addresses and MAC
survive its pods (a restarted VM's new pod gets them back), a migration
target shares them with the source while both run, the source's end leaves
the target with them, and only the owner's end frees them (bits, records and
any holder left). Every step is one fenced transaction; a deposed leader
cannot join, and records written before owners existed still read.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from store.core.identity import (
    IPAMCLAIM,
    VIRTUAL_MACHINE,
    Mac,
    OwnerRef,
    PodRef,
    PodUID,
    Provider,
    Revision,
    SubnetName,
)
from store.core.keys import Keys
from store.core.records import decode_attachment, decode_lease
from store.core.requests import AllocationRequest, Fence
from store.errors import (
    AddressInUse,
    FencedOut,
    OwnerAddressMismatch,
    OwnerInAnotherSubnet,
    PreviousOwnerNotReleased,
)
from store.etcd import EtcdClient
from store.leases import UNFENCED, Ipam
from tests.store.helpers import (
    attachment,
    attachment_addresses,
    bitmap_addresses,
    dump,
    lease_addresses,
    ref,
    register,
    request,
)

pytestmark = pytest.mark.store

CLAIM = OwnerRef(IPAMCLAIM, "default", "vm1.data")


def claimed(pod: str, **fields: Any) -> AllocationRequest:
    return request(pod, owner=CLAIM, owner_uid="claim-uid", **fields)


def test_a_migration_target_shares_the_claims_addresses_and_mac(
    ipam: Ipam, client: EtcdClient, etcd_prefix: str
) -> None:
    spec = register(client, etcd_prefix, cidr_block="10.40.0.0/24")
    source = attachment(ipam.allocate([claimed("launcher-a")], fence=UNFENCED)[0])
    target = attachment(ipam.allocate([claimed("launcher-b")], fence=UNFENCED)[0])
    assert target.ips == source.ips and target.mac == source.mac
    assert (source.owner, target.owner) == (CLAIM, CLAIM)
    assert bitmap_addresses(client, etcd_prefix, spec) == {source.ip_csv()}
    record = ipam.owner(CLAIM)
    assert record is not None and record.uid == "claim-uid"
    assert [h.ref.pod.name for h in record.holders] == ["launcher-a", "launcher-b"]
    [lease] = ipam.leases(SubnetName("net1"))
    assert (lease.owner, lease.uid, lease.provider) == (CLAIM, "claim-uid", "net1.default")


def test_the_source_leaving_keeps_the_target_and_the_addresses(
    ipam: Ipam, client: EtcdClient, etcd_prefix: str
) -> None:
    spec = register(client, etcd_prefix, cidr_block="10.40.0.0/24")
    source = attachment(ipam.allocate([claimed("launcher-a")], fence=UNFENCED)[0])
    ipam.allocate([claimed("launcher-b")], fence=UNFENCED)
    left = ipam.release(ref("launcher-a"), fence=UNFENCED, uid=PodUID("uid-launcher-a"))
    assert left == source  # what it let go of
    assert ipam.get(ref("launcher-a")) is None
    target = ipam.get(ref("launcher-b"))
    assert target is not None and target.ips == source.ips
    assert bitmap_addresses(client, etcd_prefix, spec) == {source.ip_csv()}
    assert lease_addresses(client, etcd_prefix, "net1") == {source.ip_csv()}
    record = ipam.owner(CLAIM)
    assert record is not None and [h.ref.pod.name for h in record.holders] == ["launcher-b"]


def test_a_restarted_vms_new_pod_gets_the_same_addresses_back(
    ipam: Ipam, client: EtcdClient, etcd_prefix: str
) -> None:
    register(client, etcd_prefix, cidr_block="10.40.0.0/24")
    first = attachment(ipam.allocate([claimed("launcher-a")], fence=UNFENCED)[0])
    left = ipam.leave(ref("launcher-a"), fence=UNFENCED, uid=PodUID("uid-launcher-a"))
    assert left is not None and left.owner is not None and left.owner.holders == ()
    ipam.allocate([request("stranger")], fence=UNFENCED)  # the address is not free meanwhile
    again = attachment(ipam.allocate([claimed("launcher-c")], fence=UNFENCED)[0])
    assert (again.ips, again.mac) == (first.ips, first.mac)
    stranger = ipam.get(ref("stranger"))
    assert stranger is not None and stranger.ip_csv() != first.ip_csv()
    assert sorted(attachment_addresses(client, etcd_prefix)) == sorted(
        [again.ip_csv(), stranger.ip_csv()]
    )


def test_the_owners_end_frees_bits_records_and_remaining_holders(
    ipam: Ipam, client: EtcdClient, etcd_prefix: str
) -> None:
    spec = register(client, etcd_prefix, cidr_block="10.40.0.0/24")
    ipam.allocate([claimed("launcher-a")], fence=UNFENCED)
    ipam.allocate([claimed("launcher-b")], fence=UNFENCED)
    assert ipam.release_owner(CLAIM, fence=UNFENCED, uid="another-uid") is None
    released = ipam.release_owner(CLAIM, fence=UNFENCED, uid="claim-uid")
    assert released is not None
    assert bitmap_addresses(client, etcd_prefix, spec) == set()
    keys = Keys(etcd_prefix)
    left = [k for k in dump(client, etcd_prefix) if not k.startswith(keys.subnets)]
    assert left == []  # no attachment, owner record, lease or MAC index entry remains
    assert lease_addresses(client, etcd_prefix, "net1") == set()


def test_ip_requests_are_fixed_addresses_and_a_join_must_agree(
    ipam: Ipam, client: EtcdClient, etcd_prefix: str
) -> None:
    register(client, etcd_prefix, cidr_block="10.40.0.0/24")
    first = ipam.allocate([claimed("a", fixed_ips=("10.40.0.77",))], fence=UNFENCED)[0]
    assert attachment(first).ip_csv() == "10.40.0.77"
    same = ipam.allocate([claimed("b", fixed_ips=("10.40.0.77",))], fence=UNFENCED)[0]
    assert attachment(same).ip_csv() == "10.40.0.77"
    [other] = ipam.allocate([claimed("c", fixed_ips=("10.40.0.78",))], fence=UNFENCED)
    assert isinstance(other, OwnerAddressMismatch)
    [mac] = ipam.allocate([claimed("d", mac=Mac("02:00:00:00:00:01"))], fence=UNFENCED)
    assert isinstance(mac, OwnerAddressMismatch)
    [taken] = ipam.allocate([request("e", fixed_ips=("10.40.0.77",))], fence=UNFENCED)
    assert isinstance(taken, AddressInUse) and "ipamclaim default/vm1.data" in str(taken)
    assert ipam.get(ref("c")) is None and ipam.get(ref("d")) is None


def test_an_owner_never_moves_to_another_subnet_nor_to_a_new_owner_of_its_name(
    ipam: Ipam, client: EtcdClient, etcd_prefix: str
) -> None:
    register(client, etcd_prefix, cidr_block="10.40.0.0/24")
    register(client, etcd_prefix, "net2", cidr_block="10.41.0.0/24")
    ipam.allocate([claimed("a")], fence=UNFENCED)
    [elsewhere] = ipam.allocate([claimed("b", subnet="net2")], fence=UNFENCED)
    assert isinstance(elsewhere, OwnerInAnotherSubnet)
    recreated = request("c", owner=CLAIM, owner_uid="new-claim-uid")
    [refused] = ipam.allocate([recreated], fence=UNFENCED)
    assert isinstance(refused, PreviousOwnerNotReleased)


def test_a_cold_writer_that_assumed_no_owner_joins_on_its_retry(
    client: EtcdClient, etcd_prefix: str
) -> None:
    """Two leaders' caches in turn: the second plans a fresh allocation, loses the
    bet on the owner record, reads it and joins: one set of addresses."""
    spec = register(client, etcd_prefix, cidr_block="10.40.0.0/24")
    first = attachment(Ipam(client, etcd_prefix).allocate([claimed("a")], fence=UNFENCED)[0])
    second = attachment(Ipam(client, etcd_prefix).allocate([claimed("b")], fence=UNFENCED)[0])
    assert second.ips == first.ips
    assert bitmap_addresses(client, etcd_prefix, spec) == {first.ip_csv()}


def test_a_deposed_leader_cannot_join(ipam: Ipam, client: EtcdClient, etcd_prefix: str) -> None:
    register(client, etcd_prefix, cidr_block="10.40.0.0/24")
    ipam.allocate([claimed("a")], fence=UNFENCED)
    before = dump(client, etcd_prefix)
    stale = Fence(f"{etcd_prefix}election/gone", revision=Revision(12345))
    with pytest.raises(FencedOut):
        ipam.allocate([claimed("b")], fence=stale)
    assert dump(client, etcd_prefix) == before


def test_each_nic_of_a_vm_is_an_owner_of_its_own(
    ipam: Ipam, client: EtcdClient, etcd_prefix: str
) -> None:
    register(client, etcd_prefix, cidr_block="10.40.0.0/24")
    register(client, etcd_prefix, "net2", cidr_block="10.41.0.0/24", provider="net2.default")
    vm_a = OwnerRef(VIRTUAL_MACHINE, "default", "vm1", "net1.default")
    vm_b = OwnerRef(VIRTUAL_MACHINE, "default", "vm1", "net2.default")
    nic_b = replace(request("launcher", "net2", owner=vm_b), ref=ref("launcher", "net2.default"))
    results = ipam.allocate([request("launcher", owner=vm_a), nic_b], fence=UNFENCED)
    assert [attachment(r).subnet for r in results] == ["net1", "net2"]
    owners = ipam.owners(Keys(etcd_prefix).vm_owners("default", "vm1"))
    assert sorted(o.owner.nic for o in owners) == ["net1.default", "net2.default"]


def test_records_written_before_owners_existed_still_read(client: EtcdClient) -> None:
    """Byte strings as the previous format wrote them: pod-owned, no owner field."""
    old_attachment = (
        b'{"created":1.0,"default_route":false,"fence":7,"interface":"net1",'
        b'"ips":[{"cidr":"10.0.0.0/24","family":4,"gateway":"10.0.0.1","ip":"10.0.0.5"}],'
        b'"mac":"02:00:00:00:00:05","mtu":0,"pod":{"name":"p","namespace":"ns","uid":"u1"},'
        b'"provider":"net.ns","routes":[],"subnet":"s","workload":null}'
    )
    old_lease = (
        b'{"created":1.0,"fence":7,"interface":"net1","ip":"10.0.0.5","mac":"02:00:00:00:00:05",'
        b'"owner":{"name":"p","namespace":"ns","provider":"net.ns"},"state":"allocated",'
        b'"subnet":"s","uid":"u1","workload":null}'
    )
    att = decode_attachment(old_attachment)
    lease = decode_lease(old_lease)
    assert att.owner is None and att.ref.pod == PodRef("ns", "p")
    assert lease.owner == att.ref and lease.nic_name == Provider("net.ns")
