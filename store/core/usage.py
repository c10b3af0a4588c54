"""Address usage per subnet and family, as Kube-OVN's Subnet status reports it.

Counts (:func:`family_usage`) and, for the status's range fields and the
IPPools' usage, the leased addresses as runs (:func:`family_occupancy`),
both read from the bitmap chunks: one pass, no per-address loop.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from store.core.addressing import FamilyLayout
from store.core.bitmap import Chunk
from store.core.identity import Family
from store.core.ranges import Ranges


@dataclass(frozen=True)
class FamilyUsage:
    family: Family
    total: int
    """Addresses that can be handed out: the CIDR minus reserved offsets."""
    used: int
    """Leased addresses, including any kept inside a range excluded later."""
    available: int
    excluded: int
    """Addresses in ``excludeIps``."""


def family_usage(layout: FamilyLayout, chunks: Iterable[Chunk]) -> FamilyUsage:
    used = 0
    used_reserved = 0
    for chunk in chunks:
        used += chunk.count()
        used_reserved += sum(chunk.count_between(lo, hi) for lo, hi in layout.reserved.pairs)
    total = layout.usable()
    return FamilyUsage(
        family=layout.family,
        total=total,
        used=used,
        available=total - (used - used_reserved),
        excluded=layout.excluded.count(),
    )


@dataclass(frozen=True)
class FamilyOccupancy:
    """One family of a subnet, as its status reports it: counts and address runs."""

    layout: FamilyLayout
    usage: FamilyUsage
    leased: Ranges
    """Offsets whose bit is set (held by a pod, a Vip, or a lease kept in an excluded range)."""

    @property
    def available(self) -> Ranges:
        """Offsets that could be handed out now: not reserved, not leased."""
        return (
            Ranges(((0, self.layout.size - 1),))
            .difference(self.layout.reserved)
            .difference(self.leased)
        )


def leased_ranges(chunks: Iterable[Chunk]) -> Ranges:
    """The set bits of ``chunks`` as merged offset runs (integer bit tricks, no per-bit loop)."""
    runs: list[tuple[int, int]] = []
    for chunk in sorted(chunks, key=lambda c: c.index):
        value = int.from_bytes(chunk.bits, "little")
        shift = 0
        while value:
            low = (value & -value).bit_length() - 1
            value >>= low
            ones = (~value & (value + 1)).bit_length() - 1
            runs.append((chunk.base + shift + low, chunk.base + shift + low + ones - 1))
            value >>= ones
            shift += low + ones
    return Ranges.of(runs)


def family_occupancy(layout: FamilyLayout, chunks: Iterable[Chunk]) -> FamilyOccupancy:
    """Counts (as :func:`family_usage`) and runs of one family, from one pass over its chunks."""
    leased = leased_ranges(chunks)
    used = leased.count()
    total = layout.usable()
    usage = FamilyUsage(
        family=layout.family,
        total=total,
        used=used,
        available=total - (used - leased.intersection(layout.reserved).count()),
        excluded=layout.excluded.count(),
    )
    return FamilyOccupancy(layout=layout, usage=usage, leased=leased)
