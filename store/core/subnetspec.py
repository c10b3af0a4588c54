"""A Subnet as the store sees it: validated CIDRs, gateways and exclusions.

``parse_subnet_spec`` is the one place a Subnet's user-written fields
(``cidrBlock``, ``gateway``, ``excludeIps``, ``protocol``, ``provider``) are
checked. Everything it refuses raises ``InvalidSubnetSpec`` with a message
that names the field and the bad value, before anything reaches etcd.

Choices, written down:

* ``cidrBlock`` is ``v4``, ``v6`` or ``v4,v6`` (dual stack), as in Kube-OVN.
* ``gateway`` defaults to the first address after the network address, per
  family (Kube-OVN's default); it is never handed out.
* An ``excludeIps`` entry is ``a..b``, a single address or a CIDR, and must
  lie inside the subnet: an entry outside it is almost always a typo, and
  silently ignoring it would hand out an address the user meant to keep.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from store.core.addressing import (
    FamilyLayout,
    IPAddress,
    IPNetwork,
    parse_cidr,
    parse_ip,
    structural_reserved,
)
from store.core.identity import Family, Provider, SubnetName
from store.core.ranges import Ranges
from store.errors import InvalidAddress, InvalidSubnetSpec

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_PROVIDER = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,251}[A-Za-z0-9])?$")
_PROTOCOLS: dict[str, frozenset[int]] = {
    "IPv4": frozenset({4}),
    "IPv6": frozenset({6}),
    "Dual": frozenset({4, 6}),
}


@dataclass(frozen=True)
class SubnetSpec:
    """A validated subnet: one layout per address family, IPv4 first."""

    name: SubnetName
    provider: Provider
    layouts: tuple[FamilyLayout, ...]
    exclude_ips: tuple[str, ...] = ()
    mtu: int = 0
    pooled_ips: tuple[str, ...] = ()
    """The Subnet's IPPools' addresses (``a..b`` ranges), which the next-free search
    skips. Not a field of the Subnet object: the controller derives it from the
    IPPools naming this Subnet (:meth:`with_pooled`)."""

    def layout(self, family: int) -> FamilyLayout | None:
        return next((lay for lay in self.layouts if lay.family == family), None)

    def family_of(self, address: str) -> FamilyLayout:
        """The layout an address belongs to by version (not yet by range)."""
        ip = parse_ip(address)
        layout = self.layout(ip.version)
        if layout is None:
            raise InvalidAddress(f"subnet {self.name} has no IPv{ip.version} CIDR for {address}")
        return layout

    @property
    def cidr_block(self) -> str:
        return ",".join(lay.cidr for lay in self.layouts)

    @property
    def protocol(self) -> str:
        families = {lay.family for lay in self.layouts}
        return "Dual" if families == {4, 6} else f"IPv{families.pop()}"

    def to_json(self, *, origin: dict[str, object] | None = None) -> bytes:
        """The stored form; ``origin`` records which object version it came from."""
        doc: dict[str, object] = {
            "name": self.name,
            "provider": self.provider,
            "cidrBlock": self.cidr_block,
            "gateway": ",".join(lay.gateway for lay in self.layouts),
            "excludeIps": list(self.exclude_ips),
            "mtu": self.mtu,
        }
        if self.pooled_ips:
            doc["pooledIps"] = list(self.pooled_ips)
        if origin is not None:
            doc["origin"] = origin
        return json.dumps(doc, sort_keys=True).encode()

    def with_pooled(self, entries: Sequence[str]) -> SubnetSpec:
        """This spec with ``entries`` (inside the Subnet) as its IPPools' addresses."""
        return parse_subnet_spec(
            self.name,
            cidr_block=self.cidr_block,
            provider=self.provider,
            gateway=",".join(lay.gateway for lay in self.layouts),
            exclude_ips=self.exclude_ips,
            mtu=self.mtu,
            pooled_ips=entries,
        )

    @classmethod
    def from_json(cls, raw: bytes) -> SubnetSpec:
        doc = json.loads(raw)
        return parse_subnet_spec(
            doc["name"],
            cidr_block=doc["cidrBlock"],
            provider=doc["provider"],
            gateway=doc["gateway"],
            exclude_ips=doc["excludeIps"],
            mtu=doc.get("mtu", 0),
            pooled_ips=doc.get("pooledIps", ()),
        )


def parse_subnet_spec(
    name: str,
    *,
    cidr_block: str,
    provider: str = "ovn",
    gateway: str | None = None,
    exclude_ips: Sequence[str] = (),
    protocol: str | None = None,
    mtu: int = 0,
    pooled_ips: Sequence[str] = (),
) -> SubnetSpec:
    """Validate a Subnet's fields; raise ``InvalidSubnetSpec`` naming what is wrong."""
    _check_name(name)
    _check_provider(provider)
    networks = _parse_cidr_block(name, cidr_block)
    _check_protocol(name, protocol, networks)
    gateways = _parse_gateways(name, gateway, networks)
    if not isinstance(mtu, int) or isinstance(mtu, bool) or not (mtu == 0 or 68 <= mtu <= 65535):
        # 68 is IPv4's minimum link MTU (RFC 791); 0 leaves the NIC's MTU alone.
        raise InvalidSubnetSpec(
            f"subnet {name}: mtu {mtu!r} is not 0 (unset) or an integer in 68..65535"
        )
    excludes = _parse_excludes(name, exclude_ips, networks)
    pooled = _parse_excludes(name, pooled_ips, networks, field="pooled addresses")
    layouts = tuple(
        _layout(
            networks[family],
            gateways[family],
            excludes.get(family, Ranges()),
            pooled.get(family, Ranges()),
        )
        for family in sorted(networks)
    )
    return SubnetSpec(
        name=SubnetName(name),
        provider=Provider(provider),
        layouts=layouts,
        exclude_ips=tuple(str(e).strip() for e in exclude_ips),
        mtu=mtu,
        pooled_ips=tuple(str(e).strip() for e in pooled_ips),
    )


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidSubnetSpec(f"subnet name {name!r} is not a DNS-1123 subdomain")


def _check_provider(provider: str) -> None:
    if not isinstance(provider, str) or not _PROVIDER.match(provider):
        raise InvalidSubnetSpec(
            f"provider {provider!r} is not valid (expected ovn, <nad>.<ns> or <nad>.<ns>.ovn)"
        )


def _parse_cidr_block(name: str, cidr_block: str) -> dict[int, IPNetwork]:
    if not isinstance(cidr_block, str) or not cidr_block.strip():
        raise InvalidSubnetSpec(f"subnet {name}: cidrBlock is required")
    networks: dict[int, IPNetwork] = {}
    for part in cidr_block.split(","):
        try:
            network = parse_cidr(part)
        except InvalidAddress as exc:
            raise InvalidSubnetSpec(f"subnet {name}: cidrBlock: {exc}") from exc
        if network.version in networks:
            raise InvalidSubnetSpec(
                f"subnet {name}: cidrBlock {cidr_block!r} has two IPv{network.version} CIDRs"
            )
        networks[network.version] = network
    return networks


def _check_protocol(name: str, protocol: str | None, networks: dict[int, IPNetwork]) -> None:
    if protocol is None or protocol == "":
        return
    expected = _PROTOCOLS.get(protocol)
    if expected is None:
        raise InvalidSubnetSpec(f"subnet {name}: protocol {protocol!r} is not IPv4, IPv6 or Dual")
    if set(networks) != expected:
        raise InvalidSubnetSpec(
            f"subnet {name}: protocol {protocol} does not match cidrBlock families "
            f"{sorted(networks)}"
        )


def _parse_gateways(
    name: str, gateway: str | None, networks: dict[int, IPNetwork]
) -> dict[int, IPAddress]:
    given: dict[int, IPAddress] = {}
    for part in (gateway or "").split(","):
        if not part.strip():
            continue
        try:
            ip = parse_ip(part)
        except InvalidAddress as exc:
            raise InvalidSubnetSpec(f"subnet {name}: gateway: {exc}") from exc
        network = networks.get(ip.version)
        if network is None or ip not in network:
            raise InvalidSubnetSpec(
                f"subnet {name}: gateway {ip} is not inside {cidr_of(networks)}"
            )
        given[ip.version] = ip
    for version, network in networks.items():
        if version not in given:
            # Kube-OVN's default: the first address after the network address.
            given[version] = network.network_address + min(1, network.num_addresses - 1)
    return given


def cidr_of(networks: dict[int, IPNetwork]) -> str:
    return ",".join(str(networks[v]) for v in sorted(networks))


def _parse_excludes(
    name: str,
    entries: Sequence[str],
    networks: dict[int, IPNetwork],
    *,
    field: str = "excludeIps",
) -> dict[int, Ranges]:
    if isinstance(entries, str) or not isinstance(entries, Sequence):
        raise InvalidSubnetSpec(f"subnet {name}: {field} must be a list of strings")
    found: dict[int, list[tuple[int, int]]] = {}
    for entry in entries:
        try:
            first, last = _exclude_range(str(entry))
        except InvalidAddress as exc:
            raise InvalidSubnetSpec(f"subnet {name}: {field} entry {entry!r}: {exc}") from exc
        network = networks.get(first.version)
        if network is None or first not in network or last not in network:
            raise InvalidSubnetSpec(
                f"subnet {name}: {field} entry {entry!r} is not inside {cidr_of(networks)}"
            )
        base = int(network.network_address)
        found.setdefault(first.version, []).append((int(first) - base, int(last) - base))
    return {version: Ranges.of(pairs) for version, pairs in found.items()}


def _exclude_range(entry: str) -> tuple[IPAddress, IPAddress]:
    text = entry.strip()
    if ".." in text:
        low, _, high = text.partition("..")
        first, last = parse_ip(low), parse_ip(high)
        if first.version != last.version:
            raise InvalidAddress("the two ends are of different families")
        if int(first) > int(last):
            raise InvalidAddress("the range runs backwards")
        return first, last
    if "/" in text:
        network = parse_cidr(text)
        return network.network_address, network.broadcast_address
    ip = parse_ip(text)
    return ip, ip


def _layout(
    network: IPNetwork, gateway: IPAddress, excluded: Ranges, pooled: Ranges
) -> FamilyLayout:
    gw_offset = int(gateway) - int(network.network_address)
    structural = Ranges.of([*structural_reserved(network), (gw_offset, gw_offset)])
    family: Family = 4 if network.version == 4 else 6
    return FamilyLayout(
        family=family,
        cidr=str(network),
        gateway=str(gateway),
        reserved=structural.union(excluded),
        excluded=excluded,
        pooled=pooled,
    )
