"""One NIC's ``<provider>.kubernetes.io/*`` annotations, read in Kube-OVN's order.

The NIC's own provider key first (``<provider>.<interface>`` for a NAD
attached twice), then, for what a NIC inherits (``logical_switch``,
``routes``), the NAD's provider key. Kube-OVN v1.16's per-interface keys
(``<nad>.<ns>.kubernetes.io/ip_address.<if>``, ``mac_address.<if>``) win
for the fixed address and MAC. Every value is parsed into its type here
(:mod:`reconciler.core.annotations`); a bad one is a refusal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from reconciler.core import annotations as ann
from reconciler.core.networks import NetworkSelection
from reconciler.core.vips import VIP, parse_vip_name
from store.core.identity import Mac
from store.core.records import Route


@dataclass(frozen=True)
class NicValues:
    """Reads one NIC's per-provider annotations (the NIC's own key first, then the NAD's).

    ``per_interface``: the NIC's selection when the networks annotation names its
    interface (or attaches its NAD more than once): its fixed address and MAC are
    then read first from Kube-OVN v1.16's ``<nad>.<ns>.kubernetes.io/ip_address.<if>``
    and ``mac_address.<if>``, which win over the provider's keys as in Kube-OVN.
    """

    annotations: Mapping[str, str]
    pkey: str
    base: str
    per_interface: NetworkSelection | None = None

    def get(
        self, suffix: str, *, inherit: bool = False, by_interface: bool = False
    ) -> tuple[str, str] | None:
        keys = [ann.key(self.pkey, suffix)]
        sel = self.per_interface
        if by_interface and sel is not None:
            keys.insert(0, ann.interface_key(sel.name, sel.namespace, suffix, sel.interface))
        if inherit and self.pkey != self.base:
            keys.append(ann.key(self.base, suffix))
        for k in keys:
            value = self.annotations.get(k)
            if value is not None and value.strip():
                return k, value
        return None

    def vip(self) -> str | None:
        """This NIC's own ``vip`` (never inherited: one Vip cannot serve two NICs)."""
        found = self.get(VIP)
        return None if found is None else parse_vip_name(found[1], found[0])

    def default_route(self, otherwise: bool) -> bool:
        """Kube-OVN's ``default_route`` for this NIC, else ``otherwise``."""
        found = self.get(ann.DEFAULT_ROUTE)
        return otherwise if found is None else ann.parse_default_route(found[1], found[0])

    def logical_switch(self) -> str | None:
        found = self.get(ann.LOGICAL_SWITCH, inherit=True)
        return None if found is None else ann.parse_logical_switch(found[1], found[0])

    def pool(self) -> ann.PoolRequest:
        found = self.get(ann.IP_POOL)
        return ann.PoolRequest() if found is None else ann.parse_ip_pool(found[1], found[0])

    def fixed_ips(self, sel: NetworkSelection) -> tuple[tuple[str, ...], str]:
        """The fixed addresses asked for, and where they were read (for messages)."""
        found = self.get(ann.IP_ADDRESS, by_interface=True)
        if found is not None:
            return ann.parse_ip_set(found[1], found[0]), found[0]
        if sel.ips:
            what = f"{sel.nad_key} ips"
            return ann.parse_ip_set(",".join(sel.ips), what), what
        return (), ""

    def mac(self, sel: NetworkSelection) -> Mac | None:
        found = self.get(ann.MAC_ADDRESS, by_interface=True)
        if found is not None:
            return ann.parse_mac(found[1], found[0])
        return None if sel.mac is None else ann.parse_mac(sel.mac, f"{sel.nad_key} mac")

    def routes(self) -> tuple[tuple[Route, ...], str | None]:
        found = self.get(ann.ROUTES, inherit=True)
        if found is None:
            return (), None
        return ann.parse_routes(found[1], found[0]), found[1]
