"""Allocation bitmaps in fixed-size chunks.

A subnet family's bitmap is split into chunks of ``CHUNK_BITS`` addresses,
each stored under its own etcd key and compared by mod_revision in every
transaction that changes it. 512 bytes (4096 addresses) per chunk: every
allocation transaction rewrites the chunk it touches, so a small chunk is a
cheaper write (measured by ``make bench-store``: with 4 KiB chunks the
allocation rate was 0.88 of etcd's raw CAS rate, with 512 B 1.02), far below
etcd's 1.5 MiB request limit, and allocations in different chunks never
conflict. A /16 has 16 chunks, a /8 4096, an IPv6 /64 only those it uses.

Chunks are created lazily: a chunk that has never been written reads as all
zeros, so an IPv6 /64 costs only the chunks its leases fall in. A bit set
means "leased"; reserved offsets (network, gateway, excludeIps) are never
set, they are ranges beside the bitmap (see ``store.core.ranges``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from store.core.cooldown import FreedTimes
from store.core.identity import Revision

CHUNK_BYTES = 512
CHUNK_BITS = CHUNK_BYTES * 8


def chunk_index(offset: int) -> int:
    return offset // CHUNK_BITS


def chunk_count(size: int) -> int:
    return (size + CHUNK_BITS - 1) // CHUNK_BITS


@dataclass
class Chunk:
    """One chunk's bits. Bit ``i`` is address offset ``index * CHUNK_BITS + i``."""

    index: int
    bits: bytearray = field(default_factory=lambda: bytearray(CHUNK_BYTES))
    freed: FreedTimes = field(default_factory=FreedTimes)
    """When this chunk's addresses were last freed (the cool-down, ``store.core.cooldown``).
    Stored beside the chunk under a key of its own, never in ``encode()``."""

    @classmethod
    def decode(cls, index: int, raw: bytes | None) -> Chunk:
        if raw is None:
            return cls(index)
        if len(raw) != CHUNK_BYTES:
            raise ValueError(f"bitmap chunk {index} has {len(raw)} bytes, expected {CHUNK_BYTES}")
        return cls(index, bytearray(raw))

    def encode(self) -> bytes:
        return bytes(self.bits)

    def copy(self) -> Chunk:
        return Chunk(self.index, bytearray(self.bits), self.freed.copy())

    @property
    def base(self) -> int:
        return self.index * CHUNK_BITS

    def is_set(self, offset: int) -> bool:
        bit = offset - self.base
        return bool(self.bits[bit >> 3] & (1 << (bit & 7)))

    def set(self, offset: int) -> None:
        bit = offset - self.base
        self.bits[bit >> 3] |= 1 << (bit & 7)

    def clear(self, offset: int) -> None:
        bit = offset - self.base
        self.bits[bit >> 3] &= ~(1 << (bit & 7)) & 0xFF

    def count(self) -> int:
        return int.from_bytes(self.bits, "little").bit_count()

    def offsets(self) -> list[int]:
        """Every set offset, ascending (for audits and usage)."""
        found: list[int] = []
        for byte_index, byte in enumerate(self.bits):
            if byte:
                found.extend(self.base + byte_index * 8 + b for b in range(8) if byte & (1 << b))
        return found

    def first_clear(self, start: int, stop: int) -> int | None:
        """The lowest clear offset in ``[start, stop)``, which lie in this chunk."""
        offset = start
        while offset < stop:
            bit = offset - self.base
            byte = self.bits[bit >> 3]
            if byte == 0xFF:
                # Skip the rest of a full byte at once.
                offset += 8 - (bit & 7)
                continue
            if not byte & (1 << (bit & 7)):
                return offset
            offset += 1
        return None

    def count_between(self, first: int, last: int) -> int:
        """Set bits for offsets in ``[first, last]`` (clipped to this chunk)."""
        lo = max(first, self.base) - self.base
        hi = min(last, self.base + CHUNK_BITS - 1) - self.base
        if lo > hi:
            return 0
        value = int.from_bytes(self.bits, "little") >> lo
        return (value & ((1 << (hi - lo + 1)) - 1)).bit_count()


ChunkLoader = Callable[[int, int], tuple[Chunk, Revision]]
"""(family, chunk index) -> the stored chunk and its mod_revision (0 if absent)."""


@dataclass
class WorkingChunks:
    """Copy-on-touch bitmap chunks of one subnet, remembering what they were read at."""

    loader: ChunkLoader
    touched: dict[tuple[int, int], tuple[Chunk, Revision]] = field(default_factory=dict)
    dirty: set[tuple[int, int]] = field(default_factory=set)

    def source(self, family: int, *, for_write: bool = False) -> Callable[[int], Chunk]:
        def chunk(index: int) -> Chunk:
            key = (family, index)
            if key not in self.touched:
                stored, revision = self.loader(family, index)
                self.touched[key] = (stored.copy(), revision)
            if for_write:
                self.dirty.add(key)
            return self.touched[key][0]

        return chunk
