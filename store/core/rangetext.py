"""Address ranges as Kube-OVN prints them in Subnet and IPPool status.

Kube-OVN's ``v4usingIPrange`` / ``v4availableIPrange`` (Subnet) and
``v4UsingIPRange`` / ``v4AvailableIPRange`` (IPPool) are comma-separated
runs, each a single address (``10.0.0.5``) or ``first-last``
(``10.0.0.2-10.0.0.9``), ascending. The same text is produced here from
offset :class:`~store.core.ranges.Ranges` of one subnet family.

A run list can be long (a /16 with every other address leased has 32768
runs), and it goes into an object the apiserver stores and every watcher
receives every few seconds. So at most :data:`MAX_RUNS` runs are written;
the rest is summarised as ``...(+N more)``, which no address parser
mistakes for an address. Counts (``v4usingIPs``) are always exact.
"""

from __future__ import annotations

from store.core.addressing import FamilyLayout
from store.core.ranges import Ranges

MAX_RUNS = 128
"""Runs written out before the rest is summarised."""


def range_text(layout: FamilyLayout, ranges: Ranges, *, limit: int = MAX_RUNS) -> str:
    """``a,b-c,...`` for ``ranges`` (offsets of ``layout``); empty when there are none."""
    parts = []
    for first, last in ranges.pairs[:limit]:
        low = layout.address_at(first)
        parts.append(low if first == last else f"{low}-{layout.address_at(last)}")
    rest = len(ranges.pairs) - limit
    if rest > 0:
        parts.append(f"...(+{rest} more)")
    return ",".join(parts)
