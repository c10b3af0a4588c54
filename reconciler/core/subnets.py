"""Kube-OVN Subnet objects as the controller sees them, and which one an attachment uses.

Choice (DESIGN.md): ``<provider>.kubernetes.io/logical_switch`` names the
Subnet and wins; otherwise the Subnet whose ``spec.provider`` equals the
attachment's provider. Several Subnets with one provider is refused rather
than guessed at (Kube-OVN would take whichever its cache lists first).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.core.errors import AmbiguousSubnet, InvalidSubnet, NoSubnetForProvider
from store.core.identity import SubnetName
from store.core.subnetspec import SubnetSpec, parse_subnet_spec
from store.errors import InvalidSubnetSpec, UnknownSubnet

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class SubnetView:
    """What planning needs from one Subnet object."""

    name: SubnetName
    provider: str
    cidrs: tuple[IPNetwork, ...]
    """One network per family, IPv4 first (as Kube-OVN's ``cidrBlock``)."""
    cidr_block: str
    gateway: str = ""
    exclude_ips: tuple[str, ...] = ()
    protocol: str = ""

    @property
    def families(self) -> tuple[int, ...]:
        return tuple(c.version for c in self.cidrs)


def subnet_from_object(name: str, spec: Mapping[str, Any]) -> SubnetView:
    """A Subnet object's spec -> SubnetView, or InvalidSubnet (reported on the Subnet)."""
    cidr_block = spec.get("cidrBlock")
    if not isinstance(cidr_block, str) or not cidr_block.strip():
        raise InvalidSubnet(f"Subnet {name}: spec.cidrBlock is required")
    cidrs: list[IPNetwork] = []
    for part in cidr_block.split(","):
        try:
            cidrs.append(ipaddress.ip_network(part.strip(), strict=False))
        except ValueError as exc:
            raise InvalidSubnet(f"Subnet {name}: {part.strip()!r} is not a CIDR") from exc
    if len(cidrs) > 2 or len({c.version for c in cidrs}) != len(cidrs):
        raise InvalidSubnet(f"Subnet {name}: cidrBlock must be one IPv4 and/or one IPv6 CIDR")
    provider = spec.get("provider") or "ovn"
    if not isinstance(provider, str):
        raise InvalidSubnet(f"Subnet {name}: spec.provider must be a string")
    excludes = spec.get("excludeIps") or []
    if not isinstance(excludes, list) or not all(isinstance(e, str) for e in excludes):
        raise InvalidSubnet(f"Subnet {name}: spec.excludeIps must be a list of strings")
    gateway = spec.get("gateway") or ""
    return SubnetView(
        name=SubnetName(name),
        provider=provider.strip(),
        cidrs=tuple(sorted(cidrs, key=lambda c: c.version)),
        cidr_block=cidr_block.strip(),
        gateway=str(gateway).strip(),
        exclude_ips=tuple(excludes),
        protocol=str(spec.get("protocol") or ""),
    )


def choose_subnet(
    providers: Iterable[str],
    logical_switch: str | None,
    subnets: Mapping[SubnetName, SubnetView],
) -> SubnetView:
    """The Subnet for one NIC. ``providers``: the NIC's provider keys, most specific first."""
    if logical_switch:
        found = subnets.get(SubnetName(logical_switch))
        if found is None:
            raise UnknownSubnet(
                f"logical_switch names Subnet {logical_switch!r}, which does not exist"
            )
        return found
    tried: list[str] = []
    for provider in providers:
        tried.append(provider)
        matches = sorted(name for name, s in subnets.items() if s.provider == provider)
        if len(matches) == 1:
            return subnets[matches[0]]
        if len(matches) > 1:
            raise AmbiguousSubnet(
                f"Subnets {', '.join(matches)} all have provider {provider!r}; "
                "give each provider one Subnet or name one with logical_switch"
            )
    raise NoSubnetForProvider(
        f"no Subnet has spec.provider {' or '.join(repr(p) for p in tried)}; create one "
        "or name a Subnet with the logical_switch annotation"
    )


def store_spec_of(name: str, spec: Mapping[str, Any]) -> SubnetSpec:
    """A Subnet object's spec as the store registers it (raises InvalidSubnetSpec).

    The one reading of a Subnet's fields for the store, shared by the
    controller and ``nicpoolctl rebuild``.
    """
    mtu = spec.get("mtu") or 0
    if not isinstance(mtu, int) or isinstance(mtu, bool):
        raise InvalidSubnetSpec(f"subnet {name}: mtu {mtu!r} is not an integer")
    excludes = spec.get("excludeIps") or []
    return parse_subnet_spec(
        name,
        cidr_block=str(spec.get("cidrBlock", "")),
        provider=str(spec.get("provider") or "ovn"),
        gateway=spec.get("gateway") or None,
        exclude_ips=excludes if isinstance(excludes, list) else str(excludes),
        protocol=spec.get("protocol") or None,
        mtu=mtu,
    )
