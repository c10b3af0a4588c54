"""Vip reservations in a real etcd: the Vip owns its address, one pod NIC at a time borrows it.

What must hold whatever happens to the borrowers: the reserved address
keeps its bit and its lease (owner: the Vip) from reservation to the Vip's
deletion, so it is never handed out as a next free address; a second
borrower is refused; giving it back (release, a replacing successor) frees
nothing; deleting the Vip is refused while it is borrowed.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from store.core.identity import PodUID, SubnetName
from store.core.keys import Keys
from store.core.records import decode_lease
from store.core.vips import vip_ref
from store.errors import (
    HeldByPredecessor,
    SubnetExhausted,
    VipInUse,
    VipNotReserved,
    VipSubnetMismatch,
)
from store.etcd import EtcdClient
from store.leases import UNFENCED, Ipam
from store.vips import VipReservations
from tests.store.helpers import attachment, bitmap_addresses, ref, register, request

pytestmark = pytest.mark.store


def lease_owner(client: EtcdClient, prefix: str, ip: str) -> str:
    kv, _ = client.get(Keys(prefix).lease(SubnetName("net1"), ip))
    assert kv is not None, f"no lease for {ip}"
    return str(decode_lease(kv.value).owner)


@pytest.fixture
def vips(client: EtcdClient, etcd_prefix: str, ipam: Ipam) -> VipReservations:
    register(client, etcd_prefix, cidr_block="10.9.0.0/29")  # 5 usable addresses
    return VipReservations(ipam)


def reserve(vips: VipReservations, name: str = "v", fixed_ips: tuple[str, ...] = ()) -> str:
    result = vips.reserve(
        name, f"uid-{name}", SubnetName("net1"), fixed_ips=fixed_ips, mac=None, fence=UNFENCED
    )
    return attachment(result).ip_csv()


def test_a_reserved_address_is_never_the_next_free_one(
    client: EtcdClient, etcd_prefix: str, ipam: Ipam, vips: VipReservations
) -> None:
    address = reserve(vips, fixed_ips=("10.9.0.3",))
    assert address == "10.9.0.3"
    got = [
        attachment(r).ip_csv()
        for r in ipam.allocate([request(f"p{i}") for i in range(4)], fence=UNFENCED)
    ]
    assert "10.9.0.3" not in got and len(set(got)) == 4
    assert lease_owner(client, etcd_prefix, "10.9.0.3") == str(vip_ref("v"))


def test_one_borrower_at_a_time_and_giving_back_frees_nothing(
    client: EtcdClient, etcd_prefix: str, ipam: Ipam, vips: VipReservations
) -> None:
    spec = register(client, etcd_prefix, cidr_block="10.9.0.0/29")
    address = reserve(vips)
    first = attachment(vips.borrow(request("a"), "v", fence=UNFENCED))
    assert first.ip_csv() == address and first.vip == "v"
    assert vips.borrow(request("a"), "v", fence=UNFENCED) == first  # idempotent
    second = vips.borrow(request("b"), "v", fence=UNFENCED)
    assert isinstance(second, VipInUse) and "pod default/a" in str(second)
    assert ipam.get(ref("b")) is None
    assert vips.borrower(attachment(vips.reservation("v"))) == ref("a")

    assert ipam.release(ref("a"), fence=UNFENCED) == first
    assert address in bitmap_addresses(client, etcd_prefix, spec)
    assert lease_owner(client, etcd_prefix, address) == str(vip_ref("v"))
    assert attachment(vips.borrow(request("b"), "v", fence=UNFENCED)).ip_csv() == address


def test_a_successor_replacing_a_borrower_gives_the_address_back_to_the_vip(
    client: EtcdClient, etcd_prefix: str, ipam: Ipam, vips: VipReservations
) -> None:
    spec = register(client, etcd_prefix, cidr_block="10.9.0.0/29")
    address = reserve(vips)
    attachment(vips.borrow(request("a"), "v", fence=UNFENCED))
    # The pod is recreated without the Vip: refused until its predecessor is proven gone.
    held = ipam.allocate([request("a", uid="new")], fence=UNFENCED)[0]
    assert isinstance(held, HeldByPredecessor)
    proven = replace(request("a", uid="new"), replaces=PodUID("uid-a"))
    fresh = attachment(ipam.allocate([proven], fence=UNFENCED)[0])
    assert fresh.ip_csv() != address and fresh.vip is None
    assert {address, fresh.ip_csv()} <= bitmap_addresses(client, etcd_prefix, spec)
    assert lease_owner(client, etcd_prefix, address) == str(vip_ref("v"))
    assert vips.borrower(attachment(vips.reservation("v"))) is None


def test_a_statefulset_successor_keeps_borrowing(vips: VipReservations, ipam: Ipam) -> None:
    address = reserve(vips)
    attachment(vips.borrow(request("web-0"), "v", fence=UNFENCED))
    successor = replace(request("web-0", uid="next"), replaces=PodUID("uid-web-0"))
    kept = attachment(vips.borrow(successor, "v", fence=UNFENCED))
    assert kept.ip_csv() == address and kept.uid == "next"
    assert vips.borrower(attachment(vips.reservation("v"))) == ref("web-0")


def test_the_vip_is_freed_only_once_nobody_borrows_it(
    client: EtcdClient, etcd_prefix: str, ipam: Ipam, vips: VipReservations
) -> None:
    spec = register(client, etcd_prefix, cidr_block="10.9.0.0/29")
    address = reserve(vips)
    attachment(vips.borrow(request("a"), "v", fence=UNFENCED))
    with pytest.raises(VipInUse):
        vips.unreserve("v", "uid-v", fence=UNFENCED)
    assert address in bitmap_addresses(client, etcd_prefix, spec)
    ipam.release(ref("a"), fence=UNFENCED)
    assert vips.unreserve("v", "uid-v", fence=UNFENCED) is not None
    assert address not in bitmap_addresses(client, etcd_prefix, spec)
    assert isinstance(vips.borrow(request("b"), "v", fence=UNFENCED), VipNotReserved)


def test_a_vip_of_another_subnet_is_refused(
    client: EtcdClient, etcd_prefix: str, vips: VipReservations
) -> None:
    register(client, etcd_prefix, "net2", cidr_block="10.8.0.0/29")
    reserve(vips)
    refused = vips.borrow(request("a", subnet="net2"), "v", fence=UNFENCED)
    assert isinstance(refused, VipSubnetMismatch)


def test_pool_addresses_are_skipped_by_the_next_free_search(
    client: EtcdClient, etcd_prefix: str, ipam: Ipam
) -> None:
    spec = register(
        client, etcd_prefix, cidr_block="10.9.0.0/29", pooled_ips=["10.9.0.1..10.9.0.4"]
    )
    got = ipam.allocate([request("a"), request("b"), request("c")], fence=UNFENCED)
    assert attachment(got[0]).ip_csv() == "10.9.0.5"
    assert attachment(got[1]).ip_csv() == "10.9.0.6"
    assert isinstance(got[2], SubnetExhausted)  # only pool addresses are left
    pooled = ipam.allocate([request("d", pool=(("10.9.0.2",),))], fence=UNFENCED)[0]
    assert attachment(pooled).ip_csv() == "10.9.0.2"
    assert spec.layouts[0].pooled.count() == 4
