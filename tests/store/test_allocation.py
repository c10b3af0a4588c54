"""Allocation through ``Ipam`` against a real etcd: which address a pod NIC gets.

Each test registers its own subnet under its own prefix and checks what a
user would see: the addresses in the pod's annotation, and the records etcd
holds afterwards.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from store.core.keys import Keys
from store.core.usage import FamilyUsage
from store.errors import (
    AddressInUse,
    MacInUse,
    PoolExhausted,
    SubnetExhausted,
)
from store.etcd import EtcdClient
from store.leases import UNFENCED, Ipam
from tests.store.helpers import (
    NET1,
    attachment,
    bitmap_addresses,
    chunk_keys,
    dump,
    ips,
    lease_addresses,
    ref,
    register,
    request,
    store_revision,
)

pytestmark = pytest.mark.store


def test_never_used_addresses_come_lowest_first_and_freed_ones_last(
    client: EtcdClient, etcd_prefix: str, ipam: Ipam
) -> None:
    # 10.0.0.0/29: .0 network, .1 gateway, .7 broadcast -> .2 .. .6 usable.
    register(client, etcd_prefix, cidr_block="10.0.0.0/29")
    first = ipam.allocate([request("a"), request("b"), request("c")], fence=UNFENCED)
    assert ips(first) == ["10.0.0.2", "10.0.0.3", "10.0.0.4"]

    assert ipam.release(ref("a"), fence=UNFENCED) is not None
    later = ipam.allocate([request("d"), request("e"), request("f")], fence=UNFENCED)
    # .2 was freed but is reused only after the never-used .5 and .6.
    assert ips(later) == ["10.0.0.5", "10.0.0.6", "10.0.0.2"]


def test_allocations_one_call_at_a_time_follow_the_same_order(
    client: EtcdClient, etcd_prefix: str, ipam: Ipam
) -> None:
    register(client, etcd_prefix, cidr_block="10.0.0.0/29")
    got = [ips(ipam.allocate([request(p)], fence=UNFENCED))[0] for p in "abc"]
    ipam.release(ref("b"), fence=UNFENCED)
    got += [ips(ipam.allocate([request(p)], fence=UNFENCED))[0] for p in "xyz"]
    assert got == ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6", "10.0.0.3"]


def test_a_fresh_ipam_continues_after_the_stored_cursor(
    client: EtcdClient, etcd_prefix: str
) -> None:
    """A new leader (a new Ipam) does not hand a just-freed address straight back."""
    register(client, etcd_prefix, cidr_block="10.0.0.0/29")
    old_leader = Ipam(client, etcd_prefix)
    old_leader.allocate([request("a"), request("b")], fence=UNFENCED)
    old_leader.release(ref("b"), fence=UNFENCED)
    new_leader = Ipam(client, etcd_prefix)
    assert ips(new_leader.allocate([request("c")], fence=UNFENCED)) == ["10.0.0.4"]


def test_fixed_ip_is_given_and_skipped_by_next_free(
    client: EtcdClient, etcd_prefix: str, ipam: Ipam
) -> None:
    register(client, etcd_prefix, cidr_block="10.0.0.0/29")
    fixed = ipam.allocate([request("fixed", fixed_ips=("10.0.0.3",))], fence=UNFENCED)
    assert ips(fixed) == ["10.0.0.3"]
    assert ips(ipam.allocate([request("a"), request("b")], fence=UNFENCED)) == [
        "10.0.0.2",
        "10.0.0.4",
    ]


def test_fixed_ip_held_by_another_pod_is_refused_naming_the_holder(
    client: EtcdClient, etcd_prefix: str, ipam: Ipam
) -> None:
    register(client, etcd_prefix, cidr_block="10.0.0.0/29")
    ipam.allocate([request("owner", fixed_ips=("10.0.0.5",))], fence=UNFENCED)
    before = dump(client, etcd_prefix)
    [result] = ipam.allocate([request("thief", fixed_ips=("10.0.0.5",))], fence=UNFENCED)
    assert isinstance(result, AddressInUse)
    assert "default/owner" in str(result)
    assert dump(client, etcd_prefix) == before


def test_a_holder_in_another_namespace_is_not_named(
    client: EtcdClient, etcd_prefix: str, ipam: Ipam
) -> None:
    """The refusal becomes an Event in the asking pod's namespace (issue 8, item 3)."""
    register(client, etcd_prefix, cidr_block="10.0.0.0/29")
    secret = replace(
        request("payroll-db", fixed_ips=("10.0.0.5",)), ref=ref("payroll-db", namespace="finance")
    )
    ipam.allocate([secret], fence=UNFENCED)
    [result] = ipam.allocate([request("probe", fixed_ips=("10.0.0.5",))], fence=UNFENCED)
    assert isinstance(result, AddressInUse)
    assert "held by another pod" in str(result)
    assert "finance" not in str(result) and "payroll" not in str(result)


def test_fixed_mac_is_recorded_normalised_and_unique_in_the_subnet(
    client: EtcdClient, etcd_prefix: str, ipam: Ipam
) -> None:
    register(client, etcd_prefix, cidr_block="10.0.0.0/24")
    [first] = ipam.allocate([request("a", mac="00:00:00:53:6B:BB")], fence=UNFENCED)
    assert attachment(first).mac == "00:00:00:53:6b:bb"
    mac_key = Keys(etcd_prefix).mac(NET1, attachment(first).mac)
    holder, _ = client.get(mac_key)
    assert holder is not None
    assert holder.value.decode() == Keys(etcd_prefix).attachment(ref("a"))

    before = dump(client, etcd_prefix)
    [second] = ipam.allocate([request("b", mac="00:00:00:53:6b:bb")], fence=UNFENCED)
    assert isinstance(second, MacInUse)
    assert "default/a" in str(second)
    assert dump(client, etcd_prefix) == before


def test_a_taken_mac_written_another_way_is_refused_as_in_use(
    client: EtcdClient, etcd_prefix: str, ipam: Ipam
) -> None:
    register(client, etcd_prefix, cidr_block="10.0.0.0/24")
    ipam.allocate([request("a", mac="00:00:00:53:6b:bb")], fence=UNFENCED)
    before = dump(client, etcd_prefix)
    # Kube-OVN's own examples write MACs in upper case.
    [second] = ipam.allocate([request("b", mac="00:00:00:53:6B:BB")], fence=UNFENCED)
    assert isinstance(second, MacInUse)
    assert dump(client, etcd_prefix) == before


def test_generated_macs_are_locally_administered_unicast_and_distinct(
    client: EtcdClient, etcd_prefix: str, ipam: Ipam
) -> None:
    register(client, etcd_prefix, cidr_block="10.0.0.0/24")
    results = ipam.allocate([request(f"p{i}") for i in range(40)], fence=UNFENCED)
    macs = [attachment(r).mac for r in results]
    assert len(set(macs)) == 40
    assert all(int(m.split(":")[0], 16) & 0x03 == 0x02 for m in macs)


def test_pool_first_free_candidate_wins_then_pool_exhausted(
    client: EtcdClient, etcd_prefix: str, ipam: Ipam
) -> None:
    register(client, etcd_prefix, cidr_block="10.0.0.0/24")
    pool = (("10.0.0.10",), ("10.0.0.11",), ("10.0.0.12",))
    ipam.allocate([request("squatter", fixed_ips=("10.0.0.11",))], fence=UNFENCED)
    results = ipam.allocate([request(f"web-{i}", pool=pool) for i in range(2)], fence=UNFENCED)
    assert ips(results) == ["10.0.0.10", "10.0.0.12"]

    before = dump(client, etcd_prefix)
    [full] = ipam.allocate([request("web-2", pool=pool)], fence=UNFENCED)
    assert isinstance(full, PoolExhausted)
    assert dump(client, etcd_prefix) == before

    ipam.release(ref("web-0"), fence=UNFENCED)
    assert ips(ipam.allocate([request("web-3", pool=pool)], fence=UNFENCED)) == ["10.0.0.10"]


def test_pool_entry_already_held_by_the_same_pod_is_kept(
    client: EtcdClient, etcd_prefix: str, ipam: Ipam
) -> None:
    register(client, etcd_prefix, cidr_block="10.0.0.0/24")
    pool = (("10.0.0.10",), ("10.0.0.11",))
    first = ipam.allocate([request("web-0", pool=pool)], fence=UNFENCED)
    again = ipam.allocate([request("web-0", pool=pool)], fence=UNFENCED)
    assert ips(again) == ips(first) == ["10.0.0.10"]


def test_dual_stack_pool_candidates_give_one_address_per_family(
    client: EtcdClient, etcd_prefix: str, ipam: Ipam
) -> None:
    register(client, etcd_prefix, cidr_block="10.0.0.0/24,fd00:10::/120")
    pool = (("10.0.0.20", "fd00:10::20"), ("10.0.0.21", "fd00:10::21"))
    results = ipam.allocate([request("a", pool=pool), request("b", pool=pool)], fence=UNFENCED)
    assert ips(results) == ["10.0.0.20,fd00:10::20", "10.0.0.21,fd00:10::21"]


def test_dual_stack_subnet_gives_one_address_per_family(
    client: EtcdClient, etcd_prefix: str, ipam: Ipam
) -> None:
    register(client, etcd_prefix, cidr_block="10.16.0.0/16,fd00:10:16::/64")
    [result] = ipam.allocate([request("a")], fence=UNFENCED)
    att = attachment(result)
    assert [(leased.family, leased.ip) for leased in att.ips] == [
        (4, "10.16.0.2"),
        (6, "fd00:10:16::2"),
    ]
    assert att.cidr_csv() == "10.16.0.0/16,fd00:10:16::/64"
    assert att.gateway_csv() == "10.16.0.1,fd00:10:16::1"
    assert lease_addresses(client, etcd_prefix, "net1") == {"10.16.0.2", "fd00:10:16::2"}


def test_dual_stack_fixed_v4_only_gets_next_free_v6(
    client: EtcdClient, etcd_prefix: str, ipam: Ipam
) -> None:
    register(client, etcd_prefix, cidr_block="10.0.0.0/24,fd00::/120")
    [result] = ipam.allocate([request("a", fixed_ips=("10.0.0.50",))], fence=UNFENCED)
    assert ips([result]) == ["10.0.0.50,fd00::2"]


@pytest.mark.parametrize(
    ("cidr", "far_address"),
    [("fd00:64::/64", "fd00:64::ffff:ffff:ffff:fff0"), ("10.0.0.0/8", "10.255.255.200")],
)
def test_huge_subnets_write_only_the_chunks_they_use(
    client: EtcdClient, etcd_prefix: str, ipam: Ipam, cidr: str, far_address: str
) -> None:
    spec = register(client, etcd_prefix, cidr_block=cidr)
    results = ipam.allocate([request(f"p{i}") for i in range(50)], fence=UNFENCED)
    results += ipam.allocate([request("far", fixed_ips=(far_address,))], fence=UNFENCED)
    handed_out = {attachment(r).ips[0].ip for r in results}
    assert len(handed_out) == 51
    # One chunk for the low addresses, one for the far one: nothing else exists.
    assert len(chunk_keys(client, etcd_prefix, "net1")) == 2
    assert bitmap_addresses(client, etcd_prefix, spec) == handed_out
    [usage] = ipam.usage(NET1)
    assert usage.used == 51
    assert usage.available == usage.total - 51


def test_release_frees_bits_lease_and_mac_and_is_idempotent(
    client: EtcdClient, etcd_prefix: str, ipam: Ipam
) -> None:
    spec = register(client, etcd_prefix, cidr_block="10.0.0.0/24,fd00::/120")
    [kept] = ipam.allocate([request("kept")], fence=UNFENCED)
    [gone] = ipam.allocate([request("gone", mac="0a:00:00:00:00:01")], fence=UNFENCED)
    assert ipam.release(ref("gone"), fence=UNFENCED) == gone

    assert ipam.get(ref("gone")) is None
    assert lease_addresses(client, etcd_prefix, "net1") == {i.ip for i in attachment(kept).ips}
    assert bitmap_addresses(client, etcd_prefix, spec) == {i.ip for i in attachment(kept).ips}
    assert client.get(Keys(etcd_prefix).mac(NET1, attachment(gone).mac))[0] is None

    revision = store_revision(client)
    assert ipam.release(ref("gone"), fence=UNFENCED) is None
    assert store_revision(client) == revision


def test_exhaustion_is_reported_per_request_and_others_still_succeed(
    client: EtcdClient, etcd_prefix: str, ipam: Ipam
) -> None:
    register(client, etcd_prefix, cidr_block="10.0.0.0/29")
    results = ipam.allocate([request(f"p{i}") for i in range(7)], fence=UNFENCED)
    assert ips(results[:5]) == [f"10.0.0.{i}" for i in range(2, 7)]
    assert all(isinstance(r, SubnetExhausted) for r in results[5:])
    assert ipam.get(ref("p5")) is None


def test_usage_counts_total_used_available_and_excluded(
    client: EtcdClient, etcd_prefix: str, ipam: Ipam
) -> None:
    register(
        client,
        etcd_prefix,
        cidr_block="10.0.0.0/24,fd00::/120",
        exclude_ips=["10.0.0.100..10.0.0.109", "fd00::80/121"],
    )
    ipam.allocate([request(f"p{i}") for i in range(3)], fence=UNFENCED)
    # IPv4: 256 - network - broadcast - gateway - 10 excluded; IPv6: 256 - network - gateway - 128.
    assert ipam.usage(NET1) == [
        FamilyUsage(family=4, total=243, used=3, available=240, excluded=10),
        FamilyUsage(family=6, total=126, used=3, available=123, excluded=128),
    ]
    ipam.release(ref("p0"), fence=UNFENCED)
    assert [u.used for u in ipam.usage(NET1)] == [2, 2]


def test_attachments_and_leases_list_what_was_allocated(
    client: EtcdClient, etcd_prefix: str, ipam: Ipam
) -> None:
    register(client, etcd_prefix, cidr_block="10.0.0.0/24")
    register(client, etcd_prefix, "net2", cidr_block="10.1.0.0/24", provider="net2.default")
    ipam.allocate([request("a"), request("b"), request("c", subnet="net2")], fence=UNFENCED)
    assert sorted(a.ref.pod.name for a in ipam.attachments(NET1)) == ["a", "b"]
    assert len(ipam.attachments()) == 3
    leases = ipam.leases(NET1)
    assert {(lease.ip, lease.owner.pod.name, lease.uid) for lease in leases} == {
        ("10.0.0.2", "a", "uid-a"),
        ("10.0.0.3", "b", "uid-b"),
    }


def test_a_batch_larger_than_one_transaction_is_split_and_all_allocated(
    client: EtcdClient, etcd_prefix: str, ipam: Ipam
) -> None:
    spec = register(client, etcd_prefix, cidr_block="10.0.0.0/22,fd00::/118")
    revision = store_revision(client)
    results = ipam.allocate([request(f"p{i}") for i in range(300)], fence=UNFENCED)
    handed_out = ips(results)
    assert len(set(handed_out)) == 300
    # etcd caps a transaction at 128 ops; 300 dual-stack NICs need several.
    assert store_revision(client) - revision >= 300 * 5 // 128
    assert len(bitmap_addresses(client, etcd_prefix, spec)) == 600


def test_next_free_crosses_a_bitmap_chunk_boundary(
    client: EtcdClient, etcd_prefix: str, ipam: Ipam
) -> None:
    # A chunk covers 32768 addresses: 10.16.0.0 - 10.16.127.255 is chunk 0 of a /16.
    spec = register(
        client, etcd_prefix, cidr_block="10.16.0.0/16", exclude_ips=["10.16.0.2..10.16.127.253"]
    )
    got = ips(ipam.allocate([request(f"p{i}") for i in range(4)], fence=UNFENCED))
    assert got == ["10.16.127.254", "10.16.127.255", "10.16.128.0", "10.16.128.1"]
    assert len(chunk_keys(client, etcd_prefix, "net1")) == 2
    assert bitmap_addresses(client, etcd_prefix, spec) == set(got)
