"""Kube-OVN IPPool objects: which addresses an ``ip_pool: <name>`` may use.

``spec.ips`` entries are an address, a CIDR or a range ``a..b`` (Kube-OVN's
three forms); only addresses inside the Subnet's CIDRs count, as in
Kube-OVN. The store takes pool candidates as one address per family, so a
dual-stack pool pairs its n-th IPv4 address with its n-th IPv6 address.

Expansion is bounded before anything is iterated: each entry is turned
into an integer range, clipped to the Subnet's CIDR of its own family, and
at most :data:`MAX_CANDIDATES` addresses per family are produced. An entry
of the other family, or outside the Subnet, costs nothing, so a dual-stack
pool like ``["10.1.0.0/24", "fd01::/64"]`` never walks 2^64 addresses for
its IPv4 side. A pool is a short list of addresses a workload may hold, not
a second subnet.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.core.errors import (
    InvalidIPPool,
    IPPoolNamespaceMismatch,
    IPPoolRefused,
    IPPoolSubnetMismatch,
    UnknownIPPool,
)
from reconciler.core.subnets import SubnetView
from store.core.addressing import FamilyLayout, parse_ip
from store.core.ranges import Ranges
from store.errors import InvalidAddress, PermanentError

MAX_CANDIDATES = 4096
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class IPPoolView:
    name: str
    subnet: str
    ips: tuple[str, ...]
    namespaces: tuple[str, ...] = ()
    """Namespaces whose pods take addresses from this pool by default; when set, only
    they may use it (Kube-OVN's ``spec.namespaces``)."""
    uid: str = ""
    created: str = ""
    """``metadata.creationTimestamp``: the older of two overlapping pools wins."""
    deleting: bool = False
    ready: bool = False
    """Shown usable (``Ready=True``) already: kept over a newer one created in the same
    second (``creationTimestamp`` has a resolution of one second)."""

    def serves(self, namespace: str) -> bool:
        return not self.namespaces or namespace in self.namespaces


def ippool_from_object(
    name: str,
    spec: Mapping[str, Any],
    meta: Mapping[str, Any] | None = None,
    status: Mapping[str, Any] | None = None,
) -> IPPoolView:
    """An IPPool object -> IPPoolView; InvalidIPPool (reported on the IPPool) if unreadable."""
    subnet = spec.get("subnet")
    ips = spec.get("ips") or []
    namespaces = spec.get("namespaces") or []
    if not isinstance(subnet, str) or not subnet:
        raise InvalidIPPool(f"IPPool {name}: spec.subnet is required")
    if not isinstance(ips, list) or not all(isinstance(i, str) for i in ips):
        raise InvalidIPPool(f"IPPool {name}: spec.ips must be a list of strings")
    if not isinstance(namespaces, list) or not all(
        isinstance(n, str) and _NAMESPACE.match(n) for n in namespaces
    ):
        raise InvalidIPPool(f"IPPool {name}: spec.namespaces must be a list of namespace names")
    for entry in ips:
        entry_range(name, entry)  # refuse a bad entry now, not at a pod's allocation
    meta = meta or {}
    return IPPoolView(
        name=name,
        subnet=subnet,
        ips=tuple(ips),
        namespaces=tuple(sorted(set(namespaces))),
        uid=str(meta.get("uid", "")),
        created=str(meta.get("creationTimestamp", "")),
        deleting=bool(meta.get("deletionTimestamp")),
        ready=shown_ready(status),
    )


def shown_ready(status: Mapping[str, Any] | None) -> bool:
    """True when the object's status shows ``Ready=True`` (written by the leader)."""
    found = (status or {}).get("conditions") or []
    return any(
        isinstance(c, Mapping) and c.get("type") == "Ready" and c.get("status") == "True"
        for c in found
    )


def lookup_pool(
    name: str,
    pools: Mapping[str, IPPoolView],
    subnet: SubnetView | None,
    *,
    namespace: str | None = None,
    refused: Mapping[str, PermanentError] | None = None,
) -> IPPoolView:
    """The IPPool ``name`` for a pod of ``namespace`` on ``subnet``, or why not (one being
    deleted is returned: the caller keeps a pod's address but allocates nothing new)."""
    problem = (refused or {}).get(name)
    if problem is not None:
        raise IPPoolRefused(f"IPPool {name!r} cannot be used: {problem}")
    pool = pools.get(name)
    if pool is None:
        raise UnknownIPPool(f"ip_pool names IPPool {name!r}, which does not exist")
    if namespace is not None and not pool.serves(namespace):
        raise IPPoolNamespaceMismatch(
            f"IPPool {name!r} serves namespaces {', '.join(pool.namespaces)}, not {namespace}"
        )
    if subnet is not None and pool.subnet != subnet.name:
        raise IPPoolSubnetMismatch(
            f"IPPool {name!r} belongs to Subnet {pool.subnet!r}, "
            f"but this attachment uses Subnet {subnet.name!r}"
        )
    return pool


def namespace_pools(
    namespace: str,
    subnet: SubnetView,
    pools: Mapping[str, IPPoolView],
    refused: Mapping[str, PermanentError],
) -> list[IPPoolView]:
    """The usable IPPools of ``subnet`` bound to ``namespace`` (``spec.namespaces``), by name."""
    return [
        pool
        for name, pool in sorted(pools.items())
        if pool.subnet == subnet.name
        and namespace in pool.namespaces
        and not pool.deleting
        and name not in refused
    ]


def pool_candidates(pool: IPPoolView, subnet: SubnetView) -> tuple[tuple[str, ...], ...]:
    """Candidates for the store: one tuple per entry, one address per subnet family."""
    per_family = [list(_addresses_in(pool, layout)) for layout in subnet.layouts]
    return tuple(zip(*per_family, strict=False))


def candidates_of(pools: list[IPPoolView], subnet: SubnetView) -> tuple[tuple[str, ...], ...]:
    """Several pools' candidates in order, at most MAX_CANDIDATES in all."""
    found: list[tuple[str, ...]] = []
    for pool in pools:
        found += pool_candidates(pool, subnet)[: MAX_CANDIDATES - len(found)]
    return tuple(found)


def pool_offsets(pool: IPPoolView, layout: FamilyLayout) -> Ranges:
    """The pool's addresses in ``layout``'s CIDR as offset ranges (no address walked)."""
    low, high = layout.first_int, layout.first_int + layout.size - 1
    pairs = []
    for entry in pool.ips:
        family, first, last = entry_range(pool.name, entry)
        if family == layout.family and first <= high and last >= low:
            pairs.append((max(first, low) - low, min(last, high) - low))
    return Ranges.of(pairs)


def entries_outside(pool: IPPoolView, subnet: SubnetView) -> list[str]:
    """Entries not wholly inside the Subnet's CIDR of their family."""
    outside = []
    for entry in pool.ips:
        family, first, last = entry_range(pool.name, entry)
        layout = next((lay for lay in subnet.layouts if lay.family == family), None)
        if layout is None or first < layout.first_int or last >= layout.first_int + layout.size:
            outside.append(entry)
    return outside


def entry_range(pool: str, entry: str) -> tuple[int, int, int]:
    """``(family, first, last)`` of one ``spec.ips`` entry, as integers; InvalidIPPool if bad."""
    text = entry.strip()
    try:
        if ".." in text:
            low, _, high = text.partition("..")
            first, last = parse_ip(low), parse_ip(high)
            if first.version != last.version or int(last) < int(first):
                raise InvalidAddress("range ends differ in family or are reversed")
            return first.version, int(first), int(last)
        if "/" in text:
            network = _network(text)
            return network.version, int(network.network_address), int(network.broadcast_address)
        ip = parse_ip(text)
        return ip.version, int(ip), int(ip)
    except InvalidAddress as exc:
        raise InvalidIPPool(f"IPPool {pool}: {entry!r} is not an IP, CIDR or a..b range") from exc


def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """A CIDR entry; host bits are allowed (Kube-OVN accepts them in a pool)."""
    parse_ip(text.partition("/")[0])  # the strict address rules first (no "10.1", no zone id)
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError as exc:
        raise InvalidAddress(f"{text!r} is not a CIDR") from exc


def _addresses_in(pool: IPPoolView, layout: FamilyLayout) -> Iterator[str]:
    """The pool's addresses inside ``layout``'s CIDR, in entry order, at most MAX_CANDIDATES."""
    low, high = layout.first_int, layout.first_int + layout.size - 1
    seen: set[int] = set()
    for entry in pool.ips:
        family, first, last = entry_range(pool.name, entry)
        if family != layout.family:
            continue
        for value in range(max(first, low), min(last, high) + 1):
            if value in seen:
                continue
            seen.add(value)
            yield layout.address_at(value - low)
            if len(seen) >= MAX_CANDIDATES:
                return
