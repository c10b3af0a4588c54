"""Kube-OVN ``Vip`` objects as planning sees them, and which NIC of a pod takes one.

A Vip (``kubeovn.io/v1``, cluster scoped) reserves one address per family of
its ``spec.subnet``: ``spec.v4ip``/``v6ip`` when given, else the next free
one; ``spec.macAddress`` or a random MAC. The controller records what it
reserved in ``status.v4ip``/``v6ip``/``mac`` (how the store holds it:
``store.core.vips``).

A pod takes a Vip's address with ``<provider>.kubernetes.io/vip: <name>``
on that NIC (the Vip's Subnet is then the NIC's Subnet unless
``logical_switch`` names one, as ``ip_pool: <name>`` does), or with
Kube-OVN's ``ovn.kubernetes.io/vip: <name>``, which goes to the pod's NIC
whose Subnet is the Vip's. The Vip wins over ``ip_address``, ``ip_pool`` and
``mac_address`` (Kube-OVN reads it first). A Vip with ``spec.namespace``
serves pods of that namespace only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.core import annotations as ann
from reconciler.core.errors import InvalidAnnotation, InvalidVip, VipNamespaceMismatch, VipNotFound
from store.core.addressing import parse_ip
from store.errors import InvalidAddress, InvalidMac, PermanentError, VipNotReserved

VIP = "vip"
"""The annotation suffix: ``<provider>.kubernetes.io/vip``."""
KUBE_OVN_KEY = "ovn.kubernetes.io/vip"
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


@dataclass(frozen=True)
class VipView:
    name: str
    uid: str
    subnet: str
    fixed_ips: tuple[str, ...] = ()
    """``spec.v4ip``/``v6ip`` (v4 first); empty: the next free address."""
    mac: str | None = None
    namespace: str = ""
    reserved: tuple[str, ...] = ()
    """``status.v4ip``/``v6ip`` once the controller reserved them."""
    reserved_mac: str | None = None
    """``status.mac``: with ``reserved``, what a lost reservation is restored to."""
    deleting: bool = False

    @property
    def ready(self) -> bool:
        return bool(self.reserved) and not self.deleting


def vip_from_object(obj: Mapping[str, Any]) -> VipView:
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    name = str(meta.get("name", ""))
    subnet = spec.get("subnet")
    if not isinstance(subnet, str) or not subnet:
        raise InvalidVip(f"Vip {name}: spec.subnet is required")
    try:
        fixed = tuple(a for a in (_address(spec, "v4ip", 4), _address(spec, "v6ip", 6)) if a)
        mac = spec.get("macAddress") or None
        if mac is not None:
            mac = ann.parse_mac(str(mac), f"Vip {name} spec.macAddress")
    except (InvalidAddress, InvalidMac) as exc:
        raise InvalidVip(f"Vip {name}: {exc}") from exc
    namespace = spec.get("namespace") or ""
    try:
        reserved = tuple(a for a in (_address(status, "v4ip", 4), _address(status, "v6ip", 6)) if a)
        reserved_mac = (
            ann.parse_mac(str(status["mac"]), "status.mac") if status.get("mac") else None
        )
    except (InvalidAddress, InvalidMac):
        reserved, reserved_mac = (), None  # a status we cannot read is not restored from
    return VipView(
        name=name,
        uid=str(meta.get("uid", "")),
        subnet=subnet,
        fixed_ips=fixed,
        mac=mac,
        namespace=namespace if isinstance(namespace, str) else "",
        reserved=reserved,
        reserved_mac=reserved_mac,
        deleting=bool(meta.get("deletionTimestamp")),
    )


def _address(spec: Mapping[str, Any], key: str, family: int) -> str:
    value = spec.get(key)
    if value is None or value == "":
        return ""
    ip = parse_ip(value)  # refuses a non-string too
    if ip.version != family:
        raise InvalidAddress(f"spec.{key} {value!r} is not an IPv{family} address")
    return str(ip)


def parse_vip_name(value: str, what: str) -> str:
    text = value.strip()
    if not _NAME.match(text):
        raise InvalidAnnotation(f"{what}: {text!r} is not a Vip name")
    return text


def usable_vip(
    name: str,
    vips: Mapping[str, VipView],
    refused: Mapping[str, PermanentError],
    namespace: str,
) -> VipView:
    """The Vip ``name`` a pod of ``namespace`` may take, or why not (one being deleted is
    returned: the caller keeps a pod's borrowing but starts no new one)."""
    problem = refused.get(name)
    if problem is not None:
        raise VipNotReserved(f"Vip {name} cannot be used: {problem}")
    vip = vips.get(name)
    if vip is None:
        raise VipNotFound(f"the vip annotation names Vip {name!r}, which does not exist")
    if vip.namespace and vip.namespace != namespace:
        raise VipNamespaceMismatch(f"Vip {name} is for namespace {vip.namespace}, not {namespace}")
    if not vip.reserved and not vip.deleting:
        raise VipNotReserved(f"Vip {name} has no address reserved yet")
    return vip
