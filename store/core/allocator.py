"""Where the next free address is chosen.

Next-fit, as host-local does: the search starts just after the offset
handed out last (the *cursor*) and wraps around once. Addresses never used
are therefore handed out lowest first, and an address that was freed is
reused only after the search has gone round, so a crash-looping pod does not
get the same address straight back and stale ARP/conntrack entries have
time to age out.

The allocator is pure. It reads bits through a ``ChunkSource`` (the caller
decides where chunks come from: etcd, a cache, a test dict) and marks what
it picks in those same chunk objects, so a batch of allocations planned
together never picks one address twice.
"""

from __future__ import annotations

from collections.abc import Callable

from store.core.addressing import FamilyLayout
from store.core.bitmap import CHUNK_BITS, Chunk, chunk_index
from store.core.identity import Offset

ChunkSource = Callable[[int], Chunk]
"""Returns the (mutable) chunk with the given index; all zeros if never written."""


def next_free(layout: FamilyLayout, chunks: ChunkSource, cursor: int) -> Offset | None:
    """The first free, unreserved offset after ``cursor``, wrapping once; None when full."""
    start = cursor + 1 if 0 <= cursor < layout.size - 1 else 0
    found = _first_free_in(layout, chunks, start, layout.size)
    if found is None and start > 0:
        found = _first_free_in(layout, chunks, 0, start)
    return found


def _first_free_in(layout: FamilyLayout, chunks: ChunkSource, lo: int, hi: int) -> Offset | None:
    offset = lo
    while offset < hi:
        reserved = layout.reserved.covering(offset)
        if reserved is not None:
            offset = reserved[1] + 1
            continue
        chunk = chunks(chunk_index(offset))
        stop = min(hi, chunk.base + CHUNK_BITS)
        candidate = chunk.first_clear(offset, stop)
        if candidate is None:
            offset = stop
            continue
        if candidate in layout.reserved:
            offset = candidate
            continue
        return Offset(candidate)
    return None


def is_free(layout: FamilyLayout, chunks: ChunkSource, offset: int) -> bool:
    """True when ``offset`` is neither reserved nor leased."""
    return offset not in layout.reserved and not chunks(chunk_index(offset)).is_set(offset)


def take(chunks: ChunkSource, offset: int) -> None:
    chunks(chunk_index(offset)).set(offset)


def give_back(chunks: ChunkSource, offset: int) -> None:
    chunks(chunk_index(offset)).clear(offset)
