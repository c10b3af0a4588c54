"""Kube-OVN's per-provider pod annotations: parsing what users write, rendering what we write.

Every key is ``<provider>.kubernetes.io/<suffix>`` (exact Kube-OVN keys, so
manifests and tools written for Kube-OVN keep working). Inputs:

* ``ip_address``: ``v4``, ``v6`` or ``v4,v6`` (one address per family);
* ``mac_address``: six octets, ``:`` or ``-`` separated, unicast;
* ``ip_pool``: addresses to choose from. As in Kube-OVN, a value containing
  ``;`` lists entries separated by ``;``, each ``v4``, ``v6`` or ``v4,v6``
  (the dual-stack form); otherwise ``,`` separates entries, except that
  exactly two addresses of different families are one dual-stack entry.
  A single value that is not an address names an IPPool;
* ``logical_switch``: a Subnet name (wins over provider matching);
* ``routes``: JSON ``[{"dst": cidr, "gw": ip}]``, empty ``dst`` = default route;
* ``default_route``: ``"true"``/``"false"``, whether this NIC carries the pod's
  default route (else: Multus ``default-route``, or being ``eth0``);
* ``vip``: a Vip's name (:mod:`reconciler.core.vips`).

Kube-OVN v1.16 also reads a NIC's fixed address and MAC under
``<nad>.<ns>.kubernetes.io/ip_address.<ifname>`` and ``mac_address.<ifname>``
(:func:`interface_key`) when the networks annotation names the NIC's
interface, which is how a NAD attached twice gets one address per NIC.
Those keys are only read, never written (Kube-OVN writes none either).

Outputs (:func:`render`): ``allocated``, ``ip_address``, ``mac_address``,
``cidr``, ``gateway``, ``logical_switch`` for ovn-type subnets, and
``routes`` echoed unchanged when the user gave it.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from reconciler.core.errors import (
    FamilyMismatch,
    InvalidAnnotation,
    InvalidIPPoolAnnotation,
    InvalidRoutes,
)
from store.core.addressing import parse_ip
from store.core.identity import Mac, Provider
from store.core.records import Attachment, Route
from store.errors import InvalidAddress, InvalidMac

ALLOCATED = "allocated"
IP_ADDRESS = "ip_address"
MAC_ADDRESS = "mac_address"
CIDR = "cidr"
GATEWAY = "gateway"
LOGICAL_SWITCH = "logical_switch"
IP_POOL = "ip_pool"
ROUTES = "routes"
DEFAULT_ROUTE = "default_route"

_MAC = re.compile(r"^[0-9a-fA-F]{2}([:-])[0-9a-fA-F]{2}(\1[0-9a-fA-F]{2}){4}$")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def key(provider: str, suffix: str) -> str:
    """``<provider>.kubernetes.io/<suffix>``."""
    return f"{provider}.kubernetes.io/{suffix}"


def interface_key(nad: str, namespace: str, suffix: str, interface: str) -> str:
    """Kube-OVN v1.16's per-interface input: ``<nad>.<ns>.kubernetes.io/<suffix>.<ifname>``."""
    return f"{nad}.{namespace}.kubernetes.io/{suffix}.{interface}"


@dataclass(frozen=True)
class PoolRequest:
    """A parsed ``ip_pool``: either candidate entries or an IPPool's name."""

    entries: tuple[tuple[str, ...], ...] = ()
    pool_name: str | None = None


def family_of(address: str) -> int:
    return ipaddress.ip_address(address).version


def parse_address(text: str, what: str) -> str:
    """One IP address, normalised (``::0001`` -> ``::1``); InvalidAddress otherwise.

    The store's reading (:func:`store.core.addressing.parse_ip`): the same rules
    everywhere, so nothing the planner accepts is refused later (no zone ids)."""
    try:
        return str(parse_ip(text))
    except InvalidAddress as exc:
        raise InvalidAddress(f"{what}: {text.strip()!r} is not an IP address") from exc


def parse_ip_set(value: str, what: str) -> tuple[str, ...]:
    """``v4``, ``v6`` or ``v4,v6`` -> addresses ordered v4 first; one per family at most."""
    parts = [p for p in (s.strip() for s in value.split(",")) if p]
    if not parts:
        raise InvalidAddress(f"{what}: empty address")
    addresses = [parse_address(p, what) for p in parts]
    families = [family_of(a) for a in addresses]
    if len(addresses) > 2 or len(set(families)) != len(families):
        raise FamilyMismatch(
            f"{what}: {value.strip()!r} must hold at most one IPv4 and one IPv6 address"
        )
    return tuple(sorted(addresses, key=family_of))


def parse_mac(value: str, what: str) -> Mac:
    text = value.strip()
    if not _MAC.match(text):
        raise InvalidMac(f"{what}: {text!r} is not a MAC address (six hex octets)")
    mac = text.lower().replace("-", ":")
    if int(mac[:2], 16) & 1:
        raise InvalidMac(f"{what}: {text!r} is a multicast address; a NIC needs a unicast MAC")
    if mac == "00:00:00:00:00:00":
        raise InvalidMac(f"{what}: the all-zero MAC cannot be given to a NIC")
    return Mac(mac)


def parse_ip_pool(value: str, what: str) -> PoolRequest:
    text = value.strip()
    if not text:
        raise InvalidIPPoolAnnotation(f"{what}: empty ip_pool")
    if ";" in text:
        raw_entries = [e.strip() for e in text.split(";")]
    else:
        raw_entries = [e.strip() for e in text.split(",")]
        if len(raw_entries) == 2 and _mixed_families(raw_entries):
            raw_entries = [text]
    if len(raw_entries) == 1 and "," not in raw_entries[0] and not _is_ip(raw_entries[0]):
        return PoolRequest(pool_name=_pool_name(raw_entries[0], what))
    entries: list[tuple[str, ...]] = []
    for raw in raw_entries:
        if not raw:
            raise InvalidIPPoolAnnotation(f"{what}: {text!r} has an empty entry")
        try:
            entries.append(parse_ip_set(raw, what))
        except InvalidAddress as exc:
            raise InvalidIPPoolAnnotation(
                f"{what}: {raw!r} is not an address (an IPPool name must be the only value)"
            ) from exc
    if len(set(entries)) != len(entries):
        raise InvalidIPPoolAnnotation(f"{what}: {text!r} lists an address twice")
    return PoolRequest(entries=tuple(entries))


def _is_ip(text: str) -> bool:
    try:
        parse_ip(text)
    except InvalidAddress:
        return False
    return True


def _mixed_families(parts: list[str]) -> bool:
    return all(_is_ip(p) for p in parts) and family_of(parts[0]) != family_of(parts[1])


def _pool_name(text: str, what: str) -> str:
    if not _NAME.match(text) or len(text) > 253:
        raise InvalidIPPoolAnnotation(
            f"{what}: {text!r} is neither an address list nor an IPPool name"
        )
    return text


def parse_default_route(value: str, what: str) -> bool:
    """Kube-OVN's ``default_route``: ``"true"`` or ``"false"``, nothing looser."""
    text = value.strip()
    if text not in ("true", "false"):
        raise InvalidAnnotation(f'{what}: {text!r} must be "true" or "false"')
    return text == "true"


def parse_logical_switch(value: str, what: str) -> str:
    text = value.strip()
    if not _NAME.match(text) or len(text) > 253:
        raise InvalidAnnotation(f"{what}: {text!r} is not a Subnet name")
    return text


def parse_routes(value: str, what: str) -> tuple[Route, ...]:
    try:
        doc = json.loads(value)
    except ValueError as exc:
        raise InvalidRoutes(f"{what}: not valid JSON ({exc})") from exc
    if not isinstance(doc, list):
        raise InvalidRoutes(f"{what}: must be a JSON list of {{'dst','gw'}} objects")
    return tuple(_route(item, what) for item in doc)


def _route(item: object, what: str) -> Route:
    if not isinstance(item, dict):
        raise InvalidRoutes(f"{what}: each route must be an object, got {item!r}")
    dst, gw = item.get("dst", ""), item.get("gw", "")
    if not isinstance(dst, str) or not isinstance(gw, str):
        raise InvalidRoutes(f"{what}: 'dst' and 'gw' must be strings in {item!r}")
    dst, gw = dst.strip(), gw.strip()
    if not dst and not gw:
        raise InvalidRoutes(f"{what}: route {item!r} has neither 'dst' nor 'gw'")
    if dst:
        try:
            # strict=False: Kube-OVN's own example writes 192.168.0.101/24.
            parse_ip(dst.partition("/")[0])  # strict address rules first (no zone id)
            dst = str(ipaddress.ip_network(dst, strict=False))
        except (ValueError, InvalidAddress) as exc:
            raise InvalidRoutes(f"{what}: 'dst' {dst!r} is not a CIDR") from exc
    if gw:
        try:
            gw = str(parse_ip(gw))  # the store's strict reading: no zone ids, no "10.1"
        except InvalidAddress as exc:
            raise InvalidRoutes(f"{what}: 'gw' {gw!r} is not an IP address") from exc
    if dst and gw and ipaddress.ip_network(dst).version != ipaddress.ip_address(gw).version:
        raise InvalidRoutes(f"{what}: route to {dst} via {gw} mixes address families")
    return Route(dst=dst, gw=gw)


def is_ovn_provider(provider: str) -> bool:
    """Kube-OVN's "ovn-type" subnets: provider ``ovn`` or ``<nad>.<ns>.ovn``."""
    return provider == "ovn" or provider.endswith(".ovn")


def render(
    attachment: Attachment,
    *,
    provider: Provider | str,
    subnet_provider: str,
    routes_given: str | None = None,
) -> dict[str, str]:
    """The annotations that tell the world (and Kube-OVN tools) this NIC is allocated."""
    out = {
        key(provider, ALLOCATED): "true",
        key(provider, IP_ADDRESS): attachment.ip_csv(),
        key(provider, MAC_ADDRESS): attachment.mac,
        key(provider, CIDR): attachment.cidr_csv(),
        key(provider, GATEWAY): attachment.gateway_csv(),
    }
    if is_ovn_provider(subnet_provider):
        out[key(provider, LOGICAL_SWITCH)] = attachment.subnet
    if routes_given is not None:
        out[key(provider, ROUTES)] = routes_given
    return out


def allocated_providers(annotations: Mapping[str, str]) -> set[str]:
    """The providers a pod's annotations say are allocated (``<p>.kubernetes.io/allocated:
    "true"``), leaving out ``ovn``: that one is the cluster's primary CNI's (DESIGN.md)."""
    suffix = key("", ALLOCATED)
    return {
        k[: -len(suffix)]
        for k, v in annotations.items()
        if k.endswith(suffix) and v == "true" and k != key("ovn", ALLOCATED)
    }


def is_rendered(current: Mapping[str, str], wanted: Mapping[str, str]) -> bool:
    """True when the pod already carries every wanted annotation (no patch needed)."""
    return all(current.get(k) == v for k, v in wanted.items())
