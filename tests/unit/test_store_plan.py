"""Planning a transaction: what each request becomes, and what is refused."""

from __future__ import annotations

import random

import pytest

from store.core.bitmap import Chunk, WorkingChunks
from store.core.identity import AttachmentRef, Mac, PodRef, PodUID, Provider, Revision, SubnetName
from store.core.keys import Keys
from store.core.ops import CreateRevisionIs, Delete, ModRevisionIs, Put
from store.core.plan import BatchPlan, Deferred, Existing
from store.core.records import Attachment
from store.core.requests import UNFENCED, AllocationRequest
from store.core.subnetspec import parse_subnet_spec
from store.errors import (
    AddressInUse,
    ExcludedAddress,
    HeldByPredecessor,
    InvalidAddress,
    InvalidMac,
    MacInUse,
    OutsideSubnet,
    PoolExhausted,
    SubnetExhausted,
)

pytestmark = pytest.mark.unit
KEYS = Keys("/t/v1/")


def plan_for(cidr: str = "172.17.0.0/16", excludes: tuple[str, ...] = ()) -> BatchPlan:
    spec = parse_subnet_spec(
        "macvlan", cidr_block=cidr, provider="macvlan.default", exclude_ips=excludes
    )
    return BatchPlan(
        spec=spec,
        spec_revision=Revision(7),
        keys=KEYS,
        chunks=WorkingChunks(lambda family, index: (Chunk(index), Revision(0))),
        cursors={},
        fence=UNFENCED,
        now=0.0,
        rng=random.Random(1),
        holder_of=lambda ip: "pod default/holder (macvlan.default)",
    )


def request(name: str = "p", uid: str = "u", **fields: object) -> AllocationRequest:
    return AllocationRequest(
        ref=AttachmentRef(PodRef("default", name), Provider("macvlan.default")),
        uid=PodUID(uid),
        subnet=SubnetName("macvlan"),
        interface="net1",
        **fields,  # type: ignore[arg-type]
    )


def test_new_allocation_writes_attachment_lease_and_mac_index_guarded_by_absence() -> None:
    plan = plan_for()
    att = plan.add(request(), None, {})
    compares, ops = plan.finish()
    written = {op.key for op in ops if isinstance(op, Put)}
    assert att.ip_csv() == "172.17.0.2"
    assert KEYS.attachment(att.ref) in written
    assert KEYS.lease(SubnetName("macvlan"), "172.17.0.2") in written
    assert KEYS.mac(SubnetName("macvlan"), att.mac) in written
    assert CreateRevisionIs(KEYS.attachment(att.ref), Revision(0)) in compares
    assert ModRevisionIs(KEYS.spec(SubnetName("macvlan")), Revision(7)) in compares
    assert ModRevisionIs(KEYS.chunk(SubnetName("macvlan"), 4, 0), Revision(0)) in compares


def test_generated_macs_are_locally_administered_unicast_and_distinct() -> None:
    plan = plan_for()
    macs = [plan.add(request(f"p{i}", f"u{i}"), None, {}).mac for i in range(50)]
    assert len(set(macs)) == 50
    assert all(int(m[:2], 16) & 0b11 == 0b10 for m in macs)


def test_same_uid_returns_existing_without_writing() -> None:
    plan = plan_for()
    first = plan_for().add(request(), None, {})
    again = plan.add(request(), Existing(first, Revision(5)), {})
    assert again == first
    assert plan.finish()[1] == []


@pytest.mark.parametrize(
    ("fixed", "error", "message"),
    [
        (("172.18.0.5",), OutsideSubnet, "outside 172.17.0.0/16"),
        (("172.17.0.1",), ExcludedAddress, "is the gateway"),
        (("172.17.0.3",), ExcludedAddress, "excludeIps"),
        (("fd00::1",), InvalidAddress, "no IPv6 CIDR"),
        (("not-an-ip",), InvalidAddress, "not an IP address"),
        (("172.17.0.20", "172.17.0.21"), InvalidAddress, "two IPv4 addresses"),
    ],
)
def test_bad_fixed_addresses_are_refused_and_leave_the_plan_untouched(
    fixed: tuple[str, ...], error: type[Exception], message: str
) -> None:
    plan = plan_for(excludes=("172.17.0.2..172.17.0.10",))
    with pytest.raises(error, match=message):
        plan.add(request(fixed_ips=fixed), None, {})
    assert plan.finish()[1] == []


def test_fixed_address_held_by_another_pod_names_the_holder() -> None:
    plan = plan_for()
    plan.add(request("a", "ua", fixed_ips=("172.17.0.100",)), None, {})
    with pytest.raises(AddressInUse, match=r"held by pod default/a \(macvlan\.default\)"):
        plan.add(request("b", "ub", fixed_ips=("172.17.0.100",)), None, {})


def test_user_mac_is_normalised_and_refused_when_taken() -> None:
    plan = plan_for()
    att = plan.add(request(mac=Mac("00:00:00:53:6B:BB")), None, {})
    assert att.mac == "00:00:00:53:6b:bb"
    with pytest.raises(MacInUse):
        plan.add(request("b", "ub", mac=Mac("00:00:00:53:6b:bb")), None, {})
    holder = plan.keys.attachment(
        AttachmentRef(PodRef("default", "x"), Provider("macvlan.default"))
    )
    with pytest.raises(MacInUse, match=r"pod default/x"):
        plan.add(
            request("c", "uc", mac=Mac("02:00:00:00:00:01")), None, {"02:00:00:00:00:01": holder}
        )
    elsewhere = plan.keys.attachment(AttachmentRef(PodRef("other", "x"), Provider("macvlan.other")))
    with pytest.raises(MacInUse, match=r"by another pod$"):
        plan.add(
            request("e", "ue", mac=Mac("02:00:00:00:00:02")), None, {"02:00:00:00:00:02": elsewhere}
        )
    with pytest.raises(InvalidMac, match="multicast"):
        plan.add(request("d", "ud", mac=Mac("01:00:5e:00:00:01")), None, {})


def test_pool_gives_first_free_entry_and_reports_exhaustion() -> None:
    plan = plan_for()
    pool = (("172.17.0.200",), ("172.17.0.201",))
    a = plan.add(request("a", "ua", pool=pool), None, {})
    b = plan.add(request("b", "ub", pool=pool), None, {})
    assert (a.ip_csv(), b.ip_csv()) == ("172.17.0.200", "172.17.0.201")
    with pytest.raises(PoolExhausted, match="no free address among 2 ip_pool entries"):
        plan.add(request("c", "uc", pool=pool), None, {})


def test_dual_stack_gets_one_address_per_family() -> None:
    plan = plan_for("10.0.0.0/24,fd00::/120")
    att = plan.add(request(fixed_ips=("fd00::50",)), None, {})
    assert att.ip_csv() == "10.0.0.2,fd00::50"
    assert att.cidr_csv() == "10.0.0.0/24,fd00::/120"


def test_exhaustion_is_permanent_and_plans_nothing() -> None:
    plan = plan_for("10.0.0.0/30")  # one usable address: .2
    plan.add(request("a", "ua"), None, {})
    with pytest.raises(SubnetExhausted):
        plan.add(request("b", "ub"), None, {})


def test_same_pod_twice_in_one_plan_is_deferred() -> None:
    plan = plan_for()
    plan.add(request(), None, {})
    with pytest.raises(Deferred):
        plan.add(request(uid="other"), None, {})


def predecessor(ip: str = "172.17.0.50") -> Existing:
    plan = plan_for()
    old = plan.add(request(uid="old", fixed_ips=(ip,)), None, {})
    return Existing(old, Revision(42))


def test_adopting_keeps_addresses_and_mac_for_the_new_uid() -> None:
    old = predecessor()
    plan = plan_for()
    plan.chunks.source(4, for_write=True)(0).set(50)  # the stored bitmap has it
    att = plan.add(request(uid="new", adopt=True, replaces=PodUID("old")), old, {})
    compares, _ = plan.finish()
    assert (att.ip_csv(), att.mac, att.uid) == ("172.17.0.50", old.attachment.mac, "new")
    assert ModRevisionIs(KEYS.attachment(att.ref), Revision(42)) in compares


def test_replacing_a_predecessor_frees_its_address_in_the_same_transaction() -> None:
    old = predecessor()
    plan = plan_for()
    plan.chunks.source(4, for_write=True)(0).set(50)
    with pytest.raises(HeldByPredecessor):
        plan.add(request(uid="new"), old, {})  # no proof the old pod is gone
    att = plan.add(request(uid="new", replaces=PodUID("old")), old, {})
    _, ops = plan.finish()
    assert att.ip_csv() != "172.17.0.50"
    assert Delete(KEYS.lease(SubnetName("macvlan"), "172.17.0.50")) in ops
    assert not plan.chunks.source(4)(0).is_set(50)
    assert plan.closed


def test_a_replacement_never_shares_a_transaction() -> None:
    plan = plan_for()
    plan.add(request("other", "uo"), None, {})
    with pytest.raises(Deferred):
        plan.add(request(uid="new", replaces=PodUID("old")), predecessor(), {})


def test_release_clears_bits_and_deletes_records_guarded_by_revision() -> None:
    old = predecessor()
    plan = plan_for()
    plan.chunks.source(4, for_write=True)(0).set(50)
    plan.release(old.attachment, Revision(42))
    compares, ops = plan.finish()
    assert not plan.chunks.source(4)(0).is_set(50)
    assert Delete(KEYS.attachment(old.attachment.ref)) in ops
    assert ModRevisionIs(KEYS.attachment(old.attachment.ref), Revision(42)) in compares


def test_size_counts_towards_the_etcd_op_cap() -> None:
    plan = plan_for()
    before = plan.size()
    plan.add(request(), None, {})
    assert plan.size() > before
    compares, ops = plan.finish()
    assert max(len(compares), len(ops)) <= plan.size()


def test_records_round_trip() -> None:
    from store.core.records import decode_attachment, encode_attachment

    att: Attachment = plan_for("10.0.0.0/24,fd00::/120").add(request(), None, {})
    assert decode_attachment(encode_attachment(att)) == att
