"""Address usage per subnet and family, as Kube-OVN's Subnet status reports it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from store.core.addressing import FamilyLayout
from store.core.bitmap import Chunk
from store.core.identity import Family


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
