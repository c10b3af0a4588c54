"""Kube-OVN IPPool objects: which addresses an ``ip_pool: <name>`` may use.

``spec.ips`` entries are an address, a CIDR or a range ``a..b`` (Kube-OVN's
three forms); only addresses inside the Subnet's CIDRs count, as in
Kube-OVN. The store takes pool candidates as one address per family, so a
dual-stack pool pairs its n-th IPv4 address with its n-th IPv6 address.
Expansion stops at :data:`MAX_CANDIDATES` per family: a pool is a short
list of addresses a workload may hold, not a second subnet.
"""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.core.errors import InvalidIPPool, IPPoolSubnetMismatch, UnknownIPPool
from reconciler.core.subnets import SubnetView

MAX_CANDIDATES = 4096

IPAddr = ipaddress.IPv4Address | ipaddress.IPv6Address


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
    per_family: list[list[str]] = []
    for cidr in subnet.cidrs:
        found = itertools.islice(_addresses_in(pool, cidr), MAX_CANDIDATES)
        per_family.append([str(a) for a in found])
    return tuple(zip(*per_family, strict=False))


def _addresses_in(
    pool: IPPoolView, cidr: ipaddress.IPv4Network | ipaddress.IPv6Network
) -> Iterator[IPAddr]:
    seen: set[IPAddr] = set()
    for entry in pool.ips:
        for address in _expand(pool.name, entry.strip()):
            if address.version == cidr.version and address in cidr and address not in seen:
                seen.add(address)
                yield address


def _expand(pool: str, entry: str) -> Iterator[IPAddr]:
    try:
        if ".." in entry:
            first_text, last_text = entry.split("..", 1)
            first, last = ipaddress.ip_address(first_text), ipaddress.ip_address(last_text)
            if first.version != last.version or int(last) < int(first):
                raise ValueError("range ends differ in family or are reversed")
            make = ipaddress.IPv4Address if first.version == 4 else ipaddress.IPv6Address
            for value in range(int(first), int(last) + 1):
                yield make(value)
        elif "/" in entry:
            network = ipaddress.ip_network(entry, strict=False)
            yield from network
        else:
            yield ipaddress.ip_address(entry)
    except ValueError as exc:
        raise InvalidIPPool(f"IPPool {pool}: {entry!r} is not an IP, CIDR or a..b range") from exc
