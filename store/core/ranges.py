"""Sorted, merged, inclusive offset ranges: the reserved part of a subnet.

Reserved offsets (network, broadcast, gateway, ``excludeIps``) are kept as
ranges, never as bits, so excluding a /72 of an IPv6 /64 costs two integers.
The allocator asks one question of them, "where does the reserved run that
covers this offset end?", answered by bisection.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Ranges:
    """Disjoint, non-adjacent, sorted inclusive ``(first, last)`` pairs."""

    pairs: tuple[tuple[int, int], ...] = ()

    @classmethod
    def of(cls, pairs: Iterable[tuple[int, int]]) -> Ranges:
        merged: list[tuple[int, int]] = []
        for first, last in sorted(pairs):
            if merged and first <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(merged[-1][1], last))
            else:
                merged.append((first, last))
        return cls(tuple(merged))

    def covering(self, offset: int) -> tuple[int, int] | None:
        """The range containing ``offset``, if any."""
        index = bisect.bisect_right(self.pairs, (offset, float("inf"))) - 1
        if index >= 0 and self.pairs[index][0] <= offset <= self.pairs[index][1]:
            return self.pairs[index]
        return None

    def __contains__(self, offset: object) -> bool:
        return isinstance(offset, int) and self.covering(offset) is not None

    def count(self) -> int:
        return sum(last - first + 1 for first, last in self.pairs)

    def union(self, other: Ranges) -> Ranges:
        return Ranges.of(self.pairs + other.pairs)

    def intersection(self, other: Ranges) -> Ranges:
        """Offsets in both (two sorted lists walked once)."""
        found: list[tuple[int, int]] = []
        i = j = 0
        while i < len(self.pairs) and j < len(other.pairs):
            (a0, a1), (b0, b1) = self.pairs[i], other.pairs[j]
            low, high = max(a0, b0), min(a1, b1)
            if low <= high:
                found.append((low, high))
            if a1 < b1:
                i += 1
            else:
                j += 1
        return Ranges(tuple(found))

    def difference(self, other: Ranges) -> Ranges:
        """Offsets in ``self`` and not in ``other``."""
        found: list[tuple[int, int]] = []
        j = 0
        for first, last in self.pairs:
            low = first
            while j < len(other.pairs) and other.pairs[j][1] < low:
                j += 1
            k = j
            while k < len(other.pairs) and other.pairs[k][0] <= last:
                b0, b1 = other.pairs[k]
                if b0 > low:
                    found.append((low, b0 - 1))
                low = max(low, b1 + 1)
                if low > last:
                    break
                k += 1
            if low <= last:
                found.append((low, last))
        return Ranges(tuple(found))

    def overlaps(self, other: Ranges) -> bool:
        return bool(self.intersection(other).pairs)
