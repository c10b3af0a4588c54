"""Which Subnets nicpool refuses because their CIDRs overlap, and which IPPools likewise.

The rule for Subnets, decided here and written down in reconciler/README.md:

* Two Subnets **of one network** must not overlap: the same address would be
  handed out twice on one wire. One network is one attachment provider
  (``<nad>.<ns>``: a NAD is its own segment), or, for Kube-OVN's ovn-type
  Subnets, one VPC and VLAN (Kube-OVN's own check).
* Subnets **of different networks may overlap.** Two macvlan NADs on two
  physical networks often both use ``192.168.1.0/24``; refusing that would
  break real deployments for nothing, since nicpool keeps every lease per
  Subnet. Kube-OVN itself does not check attachment Subnets at all.

Of two conflicting Subnets the older one is kept and the newer one refused,
so a Subnet in use is never taken away by one created after it. Older means
an earlier ``creationTimestamp``; within one second (its resolution) the one
already shown ``Ready``, then the name. IPPools follow the same order: of two IPPools of one
Subnet that share an address, the newer is refused (Kube-OVN refuses the
IPPool it is adding).

Pure: every replica computes the same answer from its caches.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from reconciler.core.errors import (
    IPPoolOutsideSubnet,
    IPPoolOverlap,
    IPPoolSubnetNotFound,
    SubnetOverlap,
)
from reconciler.core.ippools import IPPoolView, entries_outside, pool_offsets
from reconciler.core.subnets import SubnetView
from store.core.identity import SubnetName
from store.errors import PermanentError


def refused_subnets(subnets: Mapping[SubnetName, SubnetView]) -> dict[SubnetName, SubnetOverlap]:
    """Subnets overlapping an older Subnet of the same network, with why."""
    kept: list[SubnetView] = []
    refused: dict[SubnetName, SubnetOverlap] = {}
    for view in sorted(subnets.values(), key=lambda v: (v.created, not v.ready, v.name)):
        older = next((k for k in kept if k.network == view.network and _overlap(k, view)), None)
        if older is None:
            kept.append(view)
            continue
        refused[view.name] = SubnetOverlap(
            f"Subnet {view.name} ({view.cidr_block}) overlaps Subnet {older.name} "
            f"({older.cidr_block}) on the same network ({_network_text(view)}); "
            "the older Subnet is kept"
        )
    return refused


def _overlap(a: SubnetView, b: SubnetView) -> bool:
    return any(
        ipaddress.ip_network(x.cidr).overlaps(ipaddress.ip_network(y.cidr))
        for x in a.layouts
        for y in b.layouts
        if x.family == y.family
    )


def _network_text(view: SubnetView) -> str:
    kind, _, name = view.network.partition(":")
    return f"provider {name}" if kind == "provider" else f"vpc/vlan {name}"


def refused_pools(
    pools: Mapping[str, IPPoolView], subnets: Mapping[SubnetName, SubnetView]
) -> dict[str, PermanentError]:
    """IPPools nicpool cannot use: no such Subnet, addresses outside it, or overlapping an
    older IPPool of the same Subnet."""
    refused: dict[str, PermanentError] = {}
    kept: list[IPPoolView] = []
    for pool in sorted(pools.values(), key=lambda p: (p.created, not p.ready, p.name)):
        subnet = subnets.get(SubnetName(pool.subnet))
        if subnet is None:
            refused[pool.name] = IPPoolSubnetNotFound(
                f"IPPool {pool.name}: Subnet {pool.subnet} does not exist or is refused"
            )
            continue
        outside = entries_outside(pool, subnet)
        if outside:
            refused[pool.name] = IPPoolOutsideSubnet(
                f"IPPool {pool.name}: {', '.join(outside[:5])} not inside Subnet "
                f"{subnet.name} ({subnet.cidr_block})"
            )
            continue
        clash = _pool_clash(pool, subnet, [k for k in kept if k.subnet == pool.subnet])
        if clash is not None:
            refused[pool.name] = clash
            continue
        kept.append(pool)
    return refused


def _pool_clash(
    pool: IPPoolView, subnet: SubnetView, older: list[IPPoolView]
) -> IPPoolOverlap | None:
    for other in older:
        for layout in subnet.layouts:
            shared = pool_offsets(pool, layout).intersection(pool_offsets(other, layout))
            if shared.pairs:
                first, last = shared.pairs[0]
                where = layout.address_at(first)
                if last != first:
                    where += f"..{layout.address_at(last)}"
                return IPPoolOverlap(
                    f"IPPool {pool.name} shares {where} with the older IPPool {other.name} "
                    f"of Subnet {subnet.name}"
                )
    return None
