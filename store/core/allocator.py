"""Where the next free address is chosen.

Next-fit, as host-local does: the search starts just after the offset
handed out last (the *cursor*) and wraps around once. Addresses never used
are therefore handed out lowest first, and an address that was freed is
reused only after the search has gone round, so a crash-looping pod does not
get the same address straight back and stale ARP/conntrack entries have
time to age out. A cool-down (``store.core.cooldown``) makes that a
guarantee in time as well: with one, an address freed less than its
seconds ago is skipped however soon the search comes round to it.

The allocator is pure. It reads bits through a ``ChunkSource`` (the caller
decides where chunks come from: etcd, a cache, a test dict) and marks what
it picks in those same chunk objects, so a batch of allocations planned
together never picks one address twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from store.core.addressing import FamilyLayout
from store.core.bitmap import CHUNK_BITS, Chunk, WorkingChunks, chunk_index
from store.core.cooldown import CoolDown
from store.core.identity import Offset
from store.errors import PermanentError, PoolExhausted, SubnetCoolingDown, SubnetExhausted

ChunkSource = Callable[[int], Chunk]
"""Returns the (mutable) chunk with the given index; all zeros if never written."""


def choose_next(
    subnet: str,
    layout: FamilyLayout,
    chunks: WorkingChunks,
    cursor: int,
    cooldown: CoolDown,
) -> Offset:
    """:func:`next_free`, or why there is none: every free address of the family is
    still cooling down (``SubnetCoolingDown``, with when to ask again) or there is
    no free address at all (``SubnetExhausted``)."""
    offset = next_free(layout, chunks.source(layout.family), cursor, cooldown)
    if offset is not None:
        return offset
    what = f"subnet {subnet} has no free IPv{layout.family} address"
    touched = [chunk for (f, _), (chunk, _) in chunks.touched.items() if f == layout.family]
    wait = ready_in(layout, touched, cooldown)
    if wait is not None:
        what += f" out of its {cooldown.seconds:g} s cool-down"
        raise SubnetCoolingDown(what, retry_after=wait)
    raise SubnetExhausted(what)


def next_free(
    layout: FamilyLayout, chunks: ChunkSource, cursor: int, cooldown: CoolDown | None = None
) -> Offset | None:
    """The first free, unreserved offset after ``cursor``, wrapping once, that is not
    cooling down; None when there is none."""
    start = cursor + 1 if 0 <= cursor < layout.size - 1 else 0
    found = _first_free_in(layout, chunks, start, layout.size, cooldown)
    if found is None and start > 0:
        found = _first_free_in(layout, chunks, 0, start, cooldown)
    return found


def _first_free_in(
    layout: FamilyLayout, chunks: ChunkSource, lo: int, hi: int, cooldown: CoolDown | None
) -> Offset | None:
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
        if cooldown is not None and cooldown.cooling(chunk.freed.times.get(candidate)):
            offset = candidate + 1
            continue
        return Offset(candidate)
    return None


def ready_in(layout: FamilyLayout, chunks: Iterable[Chunk], cooldown: CoolDown) -> float | None:
    """Seconds until the first free address that is only cooling down may be handed out,
    among ``chunks`` (after a search found nothing, every chunk of the family); None when
    no free address is cooling."""
    waits = [
        cooldown.ready_in(freed_at)
        for chunk in chunks
        for offset, freed_at in chunk.freed.times.items()
        if offset < layout.size
        and offset not in layout.reserved
        and not chunk.is_set(offset)
        and cooldown.cooling(freed_at)
    ]
    return min(waits) if waits else None


def is_free(layout: FamilyLayout, chunks: ChunkSource, offset: int) -> bool:
    """True when ``offset`` is neither reserved nor leased."""
    return offset not in layout.reserved and not chunks(chunk_index(offset)).is_set(offset)


def take(chunks: ChunkSource, offset: int) -> None:
    chunks(chunk_index(offset)).set(offset)


def give_back(chunks: ChunkSource, offset: int, *, freed_at: float) -> Chunk:
    """Free ``offset``, stamped with when (for the cool-down); returns its chunk."""
    chunk = chunks(chunk_index(offset))
    chunk.clear(offset)
    chunk.freed.freed(offset, freed_at)
    return chunk


def take_back(chunks: ChunkSource, offset: int) -> Chunk:
    """Undo :func:`give_back` (a replacement that was refused); returns its chunk."""
    chunk = chunks(chunk_index(offset))
    chunk.set(offset)
    chunk.freed.unfreed(offset)
    return chunk


def first_free_entry(
    pool: Sequence[tuple[str, ...]],
    check: Callable[[tuple[str, ...]], dict[int, Offset]],
    chunks: WorkingChunks,
    cooldown: CoolDown,
) -> dict[int, Offset]:
    """The first ``ip_pool`` entry ``check`` finds free (family -> offset), preferring
    one not cooling down; a cooling one when no other is free, so a pool never waits."""
    reasons: list[str] = []
    free: list[dict[int, Offset]] = []
    for candidate in pool:
        try:
            free.append(check(candidate))
        except PermanentError as exc:
            reasons.append(str(exc))
            continue
        if not any_cooling(chunks, free[-1], cooldown):
            return free[-1]
    if free:
        return free[0]
    detail = "; ".join(reasons[:5]) + (" ..." if len(reasons) > 5 else "")
    raise PoolExhausted(f"no free address among {len(pool)} ip_pool entries: {detail}")


def any_cooling(chunks: WorkingChunks, offsets: Mapping[int, int], cooldown: CoolDown) -> bool:
    """True when one of ``offsets`` (family -> offset) was freed within the cool-down."""
    return any(
        cooldown.cooling(chunks.source(family)(chunk_index(offset)).freed.times.get(offset))
        for family, offset in offsets.items()
    )
