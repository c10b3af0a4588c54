"""Address <-> offset math for one address family of one subnet.

Everything the allocator and the bitmaps handle is an *offset*: an address's
distance from the network address. Offsets make IPv4 and IPv6 the same
problem and let an IPv6 /64 be addressed without materialising it.

Which offsets are reserved: the network address (offset 0) in both families,
the IPv4 broadcast address, the gateway, and the ``excludeIps`` of the
Subnet. Point-to-point prefixes (IPv4 /31 and /32, IPv6 /127 and /128) keep
every address (RFC 3021 / RFC 6164).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from functools import cached_property

from store.core.identity import Family, Offset
from store.core.ranges import Ranges
from store.errors import InvalidAddress, OutsideSubnet


@dataclass(frozen=True)
class FamilyLayout:
    """One family of a subnet: its CIDR, gateway and reserved offsets."""

    family: Family
    cidr: str
    gateway: str
    reserved: Ranges
    """Network/broadcast/gateway and ``excludeIps``, as offset ranges."""
    excluded: Ranges
    """Only the ``excludeIps`` part of ``reserved`` (for usage reporting)."""
    pooled: Ranges = Ranges()
    """Addresses of the Subnet's IPPools: handed out only to pods that ask for a pool
    (or an address) there, never as the next free address (Kube-OVN's default pool
    is the Subnet minus its IPPools)."""

    @cached_property
    def for_next_free(self) -> FamilyLayout:
        """This layout as the next-free search sees it: pool addresses reserved too."""
        if not self.pooled.pairs:
            return self
        return FamilyLayout(
            family=self.family,
            cidr=self.cidr,
            gateway=self.gateway,
            reserved=self.reserved.union(self.pooled),
            excluded=self.excluded,
        )

    @cached_property
    def network(self) -> IPNetwork:
        return ipaddress.ip_network(self.cidr)

    @cached_property
    def size(self) -> int:
        return int(self.network.num_addresses)

    @cached_property
    def first_int(self) -> int:
        return int(self.network.network_address)

    def contains(self, address: str) -> bool:
        """True when ``address`` is an address of this family's CIDR."""
        try:
            ip = parse_ip(address)
        except InvalidAddress:
            return False
        return ip.version == self.family and ip in self.network

    def offset_of(self, address: str) -> Offset:
        """The offset of ``address``; raises a permanent error when it is not ours."""
        ip = parse_ip(address)
        if ip.version != self.family:
            raise OutsideSubnet(f"{address} is not an IPv{self.family} address of {self.cidr}")
        if ip not in self.network:
            raise OutsideSubnet(f"{address} is outside {self.cidr}")
        return Offset(int(ip) - self.first_int)

    def address_at(self, offset: int) -> str:
        value = self.first_int + offset
        return str(
            ipaddress.IPv4Address(value) if self.family == 4 else ipaddress.IPv6Address(value)
        )

    def usable(self) -> int:
        """Addresses that can ever be handed out."""
        return self.size - self.reserved.count()


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_ip(text: str) -> IPAddress:
    """A single IPv4 or IPv6 address in its usual text form, nothing looser.

    The standard library refuses the legacy forms ("10.1", "010.0.0.1",
    "0x0a.0.0.1") that ``inet_aton`` would accept, and IPv6 zone ids are
    refused here: an address in a subnet has none.
    """
    if not isinstance(text, str):  # ip_address() would take an int as an address
        raise InvalidAddress(f"{text!r} is not an IP address")
    try:
        ip = ipaddress.ip_address(text.strip())
    except (ValueError, TypeError) as exc:
        raise InvalidAddress(f"{text!r} is not an IP address") from exc
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id is not None:
        raise InvalidAddress(f"{text!r} is not an IP address (zone ids are not allowed)")
    return ip


def parse_cidr(text: str) -> IPNetwork:
    """A CIDR that names a network exactly (no host bits set)."""
    value = text.strip()
    if "/" not in value:
        raise InvalidAddress(f"{text!r} is not a CIDR (expected address/prefix)")
    address, _, prefix = value.partition("/")
    ip = parse_ip(address)
    if not prefix.isdigit() or int(prefix) > (32 if ip.version == 4 else 128):
        raise InvalidAddress(f"{text!r} has an invalid prefix length")
    network = ipaddress.ip_network(f"{ip}/{int(prefix)}", strict=False)
    if network.network_address != ip:
        raise InvalidAddress(f"{text!r} has host bits set; did you mean {network}?")
    return network


def structural_reserved(network: IPNetwork) -> list[tuple[int, int]]:
    """Network (and IPv4 broadcast) offsets, none for point-to-point prefixes."""
    last = int(network.num_addresses) - 1
    if network.version == 4:
        return [] if network.prefixlen >= 31 else [(0, 0), (last, last)]
    return [] if network.prefixlen >= 127 else [(0, 0)]
