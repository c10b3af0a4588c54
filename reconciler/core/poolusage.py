"""An IPPool's usage, as Kube-OVN's IPPool status and nicpool's metrics report it.

From the Subnet's occupancy (``store.core.usage.family_occupancy``: the
leased runs read from the bitmaps) and the pool's address ranges, with
range arithmetic only, so a ``/64`` pool costs as little as a ``/30``:

* ``total``: the pool's addresses that can ever be handed out (its ranges
  minus the Subnet's reserved ones: network, broadcast, gateway,
  ``excludeIps``);
* ``used``: the pool's addresses that are leased (by a pod of the pool, a
  pod given one of them as a fixed address, or a Vip);
* ``available``: ``total`` minus those leased.

Status keys are Kube-OVN's for IPPools (``v4AvailableIPs``, ``v4UsingIPs``,
``v4AvailableIPRange``, ``v4UsingIPRange``, and ``v6...``); both families
are always written, a family the pool lacks as 0 and "".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.core.ippools import IPPoolView, pool_offsets
from store.core.rangetext import range_text
from store.core.usage import FamilyOccupancy


@dataclass(frozen=True)
class PoolFamilyUsage:
    family: int
    total: int
    used: int
    available: int
    using_range: str
    available_range: str


def pool_usage(pool: IPPoolView, occupancy: Sequence[FamilyOccupancy]) -> list[PoolFamilyUsage]:
    found = []
    for family in occupancy:
        layout = family.layout
        offsets = pool_offsets(pool, layout)
        usable = offsets.difference(layout.reserved)
        leased = offsets.intersection(family.leased)
        available = usable.difference(family.leased)
        found.append(
            PoolFamilyUsage(
                family=layout.family,
                total=usable.count(),
                used=leased.count(),
                available=available.count(),
                using_range=range_text(layout, leased),
                available_range=range_text(layout, available),
            )
        )
    return found


def pool_status(usage: Sequence[PoolFamilyUsage]) -> dict[str, Any]:
    """The counting part of an IPPool's ``status`` (Kube-OVN's keys)."""
    status: dict[str, Any] = {}
    by_family = {u.family: u for u in usage}
    for family in (4, 6):
        u = by_family.get(family)
        status[f"v{family}AvailableIPs"] = u.available if u else 0
        status[f"v{family}UsingIPs"] = u.used if u else 0
        status[f"v{family}AvailableIPRange"] = u.available_range if u else ""
        status[f"v{family}UsingIPRange"] = u.using_range if u else ""
    return status


def subnet_status(occupancy: Sequence[FamilyOccupancy]) -> dict[str, Any]:
    """The counting part of a Subnet's ``status`` (Kube-OVN's keys, lower-case ``IPs``)."""
    status: dict[str, Any] = {}
    by_family = {o.layout.family: o for o in occupancy}
    for family in (4, 6):
        o = by_family.get(family)
        status[f"v{family}availableIPs"] = o.usage.available if o else 0
        status[f"v{family}usingIPs"] = o.usage.used if o else 0
        status[f"v{family}availableIPrange"] = range_text(o.layout, o.available) if o else ""
        status[f"v{family}usingIPrange"] = range_text(o.layout, o.leased) if o else ""
    return status
