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
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.core.errors import InvalidIPPool, IPPoolSubnetMismatch, UnknownIPPool
from reconciler.core.subnets import SubnetView
from store.core.addressing import FamilyLayout, parse_ip
from store.errors import InvalidAddress

MAX_CANDIDATES = 4096


@dataclass(frozen=True)
class IPPoolView:
    name: str
    subnet: str
    ips: tuple[str, ...]


def ippool_from_object(name: str, spec: Mapping[str, Any]) -> IPPoolView:
    subnet = spec.get("subnet")
    ips = spec.get("ips") or []
    if not isinstance(subnet, str) or not subnet:
        raise InvalidIPPool(f"IPPool {name}: spec.subnet is required")
    if not isinstance(ips, list) or not all(isinstance(i, str) for i in ips):
        raise InvalidIPPool(f"IPPool {name}: spec.ips must be a list of strings")
    for entry in ips:
        entry_range(name, entry)  # refuse a bad entry now, not at a pod's allocation
    return IPPoolView(name=name, subnet=subnet, ips=tuple(ips))


def lookup_pool(
    name: str, pools: Mapping[str, IPPoolView], subnet: SubnetView | None
) -> IPPoolView:
    pool = pools.get(name)
    if pool is None:
        raise UnknownIPPool(f"ip_pool names IPPool {name!r}, which does not exist")
    if subnet is not None and pool.subnet != subnet.name:
        raise IPPoolSubnetMismatch(
            f"IPPool {name!r} belongs to Subnet {pool.subnet!r}, "
            f"but this attachment uses Subnet {subnet.name!r}"
        )
    return pool


def pool_candidates(pool: IPPoolView, subnet: SubnetView) -> tuple[tuple[str, ...], ...]:
    """Candidates for the store: one tuple per entry, one address per subnet family."""
    per_family = [list(_addresses_in(pool, layout)) for layout in subnet.layouts]
    return tuple(zip(*per_family, strict=False))


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
