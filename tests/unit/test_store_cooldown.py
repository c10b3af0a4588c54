"""The cool-down, pure: which freed address waits, which does not, and its record."""

from __future__ import annotations

import json
import random

import pytest

from store.core import allocator
from store.core.bitmap import CHUNK_BITS, Chunk, WorkingChunks
from store.core.cooldown import (
    DEFAULT_COOLDOWN,
    MAX_COOLDOWN,
    CoolDown,
    FreedTimes,
    check_cooldown,
)
from store.core.identity import AttachmentRef, PodRef, PodUID, Provider, Revision, SubnetName
from store.core.keys import Keys
from store.core.ops import Delete, Put
from store.core.plan import BatchPlan, Existing
from store.core.records import Attachment
from store.core.requests import UNFENCED, AllocationRequest
from store.core.subnetspec import parse_subnet_spec
from store.errors import AddressInUse, PoolExhausted, SubnetCoolingDown, SubnetExhausted

pytestmark = pytest.mark.unit
KEYS = Keys("/t/v1/")
NET = SubnetName("net")


class Store:
    """Chunks as etcd would hold them between plans: what one plan writes, the next reads."""

    def __init__(self) -> None:
        self.chunks: dict[tuple[int, int], Chunk] = {}

    def plan(self, now: float, cooldown: float = 5.0, cidr: str = "10.0.0.0/29") -> BatchPlan:
        spec = parse_subnet_spec("net", cidr_block=cidr, provider="a.default")

        def load(family: int, index: int) -> tuple[Chunk, Revision]:
            return self.chunks.get((family, index), Chunk(index)), Revision(1)

        return BatchPlan(
            spec=spec,
            spec_revision=Revision(1),
            keys=KEYS,
            chunks=WorkingChunks(load),
            cursors={4: 6},  # the search wraps at once: freed addresses come first
            fence=UNFENCED,
            now=now,
            rng=random.Random(1),
            holder_of=lambda ip: None,
            cooldown=cooldown,
        )

    def commit(self, plan: BatchPlan) -> list[Put | Delete]:
        _, ops = plan.finish()
        for key in plan.chunks.dirty:
            self.chunks[key] = plan.chunks.touched[key][0].copy()
        return [op for op in ops if isinstance(op, Put | Delete) and "/cooling/" in op.key]


def request(name: str, uid: str = "", **fields: object) -> AllocationRequest:
    return AllocationRequest(
        ref=AttachmentRef(PodRef("default", name), Provider("a.default")),
        uid=PodUID(uid or f"uid-{name}"),
        subnet=NET,
        interface="net1",
        **fields,  # type: ignore[arg-type]
    )


def fill(store: Store, now: float) -> list[Attachment]:
    """Every usable address of the /29 (.2 .. .6) leased."""
    plan = store.plan(now)
    held = [plan.add(request(f"p{n}"), None, {}) for n in range(5)]
    store.commit(plan)
    return held


def release(store: Store, att: Attachment, now: float, cooldown: float = 5.0) -> list[Put | Delete]:
    plan = store.plan(now, cooldown)
    plan.release(att, Revision(1))
    return store.commit(plan)


def test_a_freed_address_waits_out_the_cool_down_then_is_handed_out() -> None:
    store = Store()
    held = fill(store, now=100.0)
    release(store, held[2], now=200.0)
    with pytest.raises(SubnetCoolingDown) as cooling:
        store.plan(now=203.0).add(request("new"), None, {})
    assert cooling.value.retry_after == pytest.approx(2.0)
    assert isinstance(cooling.value, SubnetExhausted)  # callers that only know exhaustion
    got = store.plan(now=205.0).add(request("new"), None, {})
    assert got.ip_csv() == held[2].ip_csv()


def test_a_full_subnet_with_nothing_cooling_is_exhausted() -> None:
    store = Store()
    fill(store, now=100.0)
    with pytest.raises(SubnetExhausted) as refused:
        store.plan(now=500.0).add(request("new"), None, {})
    assert not isinstance(refused.value, SubnetCoolingDown)


def test_the_next_free_choice_skips_a_cooling_address_for_another_free_one() -> None:
    store = Store()
    held = fill(store, now=100.0)
    release(store, held[0], now=200.0)  # .2, the first the search would meet
    release(store, held[3], now=10.0)  # .5, freed long ago (a replay of an old stamp)
    got = store.plan(now=201.0).add(request("new"), None, {})
    assert got.ip_csv() == "10.0.0.5"


def test_no_cool_down_hands_a_freed_address_straight_back() -> None:
    store = Store()
    held = fill(store, now=100.0)
    release(store, held[1], now=200.0, cooldown=0.0)
    got = store.plan(now=200.1, cooldown=0.0).add(request("new"), None, {})
    assert got.ip_csv() == held[1].ip_csv()


@pytest.mark.parametrize("how", ["fixed_ips", "pool"])
def test_a_named_address_is_handed_out_while_it_cools(how: str) -> None:
    """ip_address / ip_pool name the address: Kube-OVN has no cool-down, nothing waits."""
    store = Store()
    held = fill(store, now=100.0)
    release(store, held[1], now=200.0)
    ip = held[1].ip_csv()
    asked = {"fixed_ips": (ip,)} if how == "fixed_ips" else {"pool": ((ip,),)}
    got = store.plan(now=200.5).add(request("static", **asked), None, {})
    assert got.ip_csv() == ip


def test_a_pool_prefers_an_entry_that_is_not_cooling() -> None:
    store = Store()
    held = fill(store, now=100.0)
    release(store, held[0], now=200.0)
    release(store, held[1], now=50.0)
    pool = ((held[0].ip_csv(),), (held[1].ip_csv(),), ("10.0.0.4",))
    got = store.plan(now=201.0).add(request("web", pool=pool), None, {})
    assert got.ip_csv() == held[1].ip_csv()


def test_a_pool_with_nothing_free_is_still_exhausted() -> None:
    store = Store()
    fill(store, now=100.0)
    with pytest.raises(PoolExhausted):
        store.plan(now=201.0).add(request("web", pool=(("10.0.0.2",),)), None, {})


def test_a_release_writes_the_chunks_release_times_beside_it() -> None:
    store = Store()
    held = fill(store, now=100.0)
    [op] = release(store, held[0], now=200.0)
    assert isinstance(op, Put)
    assert op.key == KEYS.cooling(NET, 4, 0)
    assert json.loads(op.value) == {"keep": 5.0, "freed": [[2, 200.0]]}


def test_a_release_prunes_entries_past_the_cool_down_and_deletes_an_empty_record() -> None:
    store = Store()
    held = fill(store, now=100.0)
    release(store, held[0], now=200.0)
    [op] = release(store, held[1], now=203.0)
    assert isinstance(op, Put) and json.loads(op.value)["freed"] == [[2, 200.0], [3, 203.0]]
    [op] = release(store, held[2], now=300.0)
    assert isinstance(op, Put) and json.loads(op.value)["freed"] == [[4, 300.0]]
    # An allocation rewrites the chunk but not its record.
    plan = store.plan(now=400.0)
    plan.add(request("new"), None, {})
    assert store.commit(plan) == []


def test_a_writer_without_a_cool_down_keeps_the_controllers_entries() -> None:
    """nicpoolctl release (no cool-down of its own) must not prune what the controller honours."""
    store = Store()
    held = fill(store, now=100.0)
    release(store, held[0], now=200.0, cooldown=30.0)
    [op] = release(store, held[1], now=220.0, cooldown=0.0)
    assert isinstance(op, Put)
    assert json.loads(op.value) == {"keep": 30.0, "freed": [[2, 200.0], [3, 220.0]]}


def test_a_refused_replacement_leaves_no_stamp() -> None:
    store = Store()
    held = fill(store, now=100.0)
    old = held[0]
    plan = store.plan(now=200.0)
    outside = request("p0", uid="new", replaces=old.uid, fixed_ips=("10.0.0.3",))
    with pytest.raises(AddressInUse):  # .3 is held by p1
        plan.add(outside, Existing(old, Revision(1)), {})
    chunk = plan.chunks.touched[(4, 0)][0]
    assert chunk.freed.times == {} and chunk.is_set(2)


@pytest.mark.parametrize(
    ("freed_at", "now", "cooling"),
    [
        (100.0, 104.9, True),
        (100.0, 105.0, False),
        (100.0, 99.0, True),  # a clock behind the stamp: counts from now, at most 5 s
        (None, 100.0, False),
    ],
)
def test_cooling_is_at_most_the_cool_down(
    freed_at: float | None, now: float, cooling: bool
) -> None:
    assert CoolDown(5.0, now).cooling(freed_at) is cooling
    assert CoolDown(0.0, now).cooling(freed_at) is False


def test_ready_in_names_the_first_cooling_free_address() -> None:
    layout = parse_subnet_spec("t", cidr_block="10.0.0.0/29", provider="a.b").layouts[0]
    chunk = Chunk(0)
    chunk.freed = FreedTimes({3: 100.0, 4: 102.0, 5: 101.0})
    chunk.set(5)  # freed, then taken again (a fixed request): not waiting
    assert allocator.ready_in(layout, [chunk], CoolDown(5.0, 103.0)) == pytest.approx(2.0)
    assert allocator.ready_in(layout, [chunk], CoolDown(5.0, 200.0)) is None


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"[]",
        b'{"keep": 5}',
        b'{"keep": "x", "freed": []}',
        b'{"keep": -1, "freed": []}',
        b'{"keep": 5, "freed": [[4096, 1.0]]}',  # outside its chunk
        b'{"keep": 5, "freed": [[-1, 1.0]]}',
        b'{"keep": 5, "freed": [[1, NaN]]}',
        b'{"keep": 5, "freed": [[1, Infinity]]}',
        b'{"keep": 5, "freed": [[1]]}',
    ],
)
def test_an_unreadable_record_reads_as_nothing_cooling(raw: bytes) -> None:
    assert FreedTimes.decode(raw, 0, CHUNK_BITS) == FreedTimes()


def test_a_record_round_trips_relative_to_its_chunk() -> None:
    base = 7 * CHUNK_BITS
    freed = FreedTimes({base + 1: 10.5, base + 4095: 11.25}, keep=5.0)
    raw = freed.encode(base)
    assert json.loads(raw)["freed"] == [[1, 10.5], [4095, 11.25]]
    assert FreedTimes.decode(raw, base, CHUNK_BITS) == freed


@pytest.mark.parametrize("bad", [-1.0, MAX_COOLDOWN + 1, float("nan"), float("inf")])
def test_a_cool_down_setting_out_of_range_is_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="between 0 and"):
        check_cooldown(bad)
    assert check_cooldown(DEFAULT_COOLDOWN) == DEFAULT_COOLDOWN
