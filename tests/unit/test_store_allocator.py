"""Choosing the next address: next-fit over chunked bitmaps, around reserved ranges."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from store.core import allocator
from store.core.addressing import FamilyLayout
from store.core.bitmap import CHUNK_BITS, Chunk
from store.core.subnetspec import parse_subnet_spec

pytestmark = pytest.mark.unit


class Chunks(dict[int, Chunk]):
    """A test ChunkSource that records which chunks were materialised."""

    def __call__(self, index: int) -> Chunk:
        return self.setdefault(index, Chunk(index))


def layout_of(cidr: str, excludes: tuple[str, ...] = ()) -> FamilyLayout:
    return parse_subnet_spec("t", cidr_block=cidr, provider="a.b", exclude_ips=excludes).layouts[0]


def drain(layout: FamilyLayout, chunks: Chunks, limit: int) -> list[int]:
    picked: list[int] = []
    cursor = -1
    for _ in range(limit):
        offset = allocator.next_free(layout, chunks, cursor)
        if offset is None:
            break
        allocator.take(chunks, offset)
        picked.append(offset)
        cursor = offset
    return picked


def test_first_addresses_skip_network_gateway_and_excludes() -> None:
    layout = layout_of("172.17.0.0/16", ("172.17.0.0..172.17.0.10",))
    picked = drain(layout, Chunks(), 3)
    assert [layout.address_at(o) for o in picked] == ["172.17.0.11", "172.17.0.12", "172.17.0.13"]


def test_freed_address_is_reused_only_after_wrapping() -> None:
    layout = layout_of("10.0.0.0/29")  # usable offsets 2..6 (1 = gateway, 7 = broadcast)
    chunks = Chunks()
    picked = drain(layout, chunks, 2)
    assert picked == [2, 3]
    allocator.give_back(chunks, 2, freed_at=0.0)
    # 2 is free again, but never-used 4, 5, 6 come first.
    assert allocator.next_free(layout, chunks, 3) == 4
    assert allocator.next_free(layout, chunks, 6) == 2


def test_full_subnet_reports_none() -> None:
    layout = layout_of("10.0.0.0/29")
    chunks = Chunks()
    assert drain(layout, chunks, 100) == [2, 3, 4, 5, 6]
    assert allocator.next_free(layout, chunks, 6) is None


def test_ipv6_slash_64_touches_one_chunk() -> None:
    layout = layout_of("fd00::/64")
    chunks = Chunks()
    picked = drain(layout, chunks, 1000)
    assert len(set(picked)) == 1000
    assert list(chunks) == [0]


def test_excluded_range_spanning_chunks_is_jumped_not_scanned() -> None:
    layout = layout_of("fd00::/64", ("fd00::..fd00::ffff:ffff",))
    chunks = Chunks()
    offset = allocator.next_free(layout, chunks, -1)
    assert offset == 2**32
    assert list(chunks) == [2**32 // CHUNK_BITS]


def test_ipv4_slash_8_picks_past_a_full_chunk() -> None:
    layout = layout_of("10.0.0.0/8")
    chunks = Chunks()
    chunks(0).bits[:] = b"\xff" * len(chunks(0).bits)
    assert allocator.next_free(layout, chunks, -1) == CHUNK_BITS


def test_point_to_point_prefix_keeps_both_addresses() -> None:
    layout = parse_subnet_spec(
        "p2p", cidr_block="10.0.0.0/31", provider="a.b", gateway="10.0.0.0"
    ).layouts[0]
    assert drain(layout, Chunks(), 5) == [1]


@settings(max_examples=60, deadline=None)
@given(
    prefix=st.integers(min_value=22, max_value=30),
    excludes=st.lists(st.tuples(st.integers(0, 1023), st.integers(0, 40)), max_size=6),
    frees=st.lists(st.integers(0, 1023), max_size=30),
)
def test_never_hands_out_an_offset_twice_nor_a_reserved_one(
    prefix: int, excludes: list[tuple[int, int]], frees: list[int]
) -> None:
    network = ipaddress.ip_network(f"10.0.0.0/{prefix}")
    size = network.num_addresses
    entries = tuple(
        f"{network[min(a, size - 1)]}..{network[min(a + n, size - 1)]}" for a, n in excludes
    )
    layout = layout_of(str(network), entries)
    chunks = Chunks()
    first = drain(layout, chunks, size)
    freed = sorted({f for f in frees if f in set(first)})
    for offset in freed:
        allocator.give_back(chunks, offset, freed_at=0.0)
    second = drain(layout, chunks, size)
    assert len(first) == len(set(first)) == layout.usable()
    assert sorted(second) == freed
    assert not any(o in layout.reserved for o in first)


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_ipv6_offsets_round_trip_without_materialising(offset: int) -> None:
    layout = layout_of("fd00:1::/64")
    assert layout.offset_of(layout.address_at(offset)) == offset


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=0, max_value=2**24 - 1))
def test_ipv4_slash_8_offsets_round_trip(offset: int) -> None:
    layout = layout_of("10.0.0.0/8")
    assert layout.offset_of(layout.address_at(offset)) == offset
