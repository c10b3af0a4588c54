"""Which networks a pod asks for: Multus's two pod annotations, parsed.

``k8s.v1.cni.cncf.io/networks`` comes in two forms:

* a comma list of ``name``, ``ns/name``, ``name@if`` or ``ns/name@if``
  (spaces around items are ignored, an empty item is an error);
* a JSON list of objects with ``name`` (required), ``namespace``,
  ``interface``, ``ips``, ``mac``, ``default-route`` and
  ``ipam-claim-reference`` (Multus's NetworkSelectionElement; other keys
  are Multus's business and ignored). ``ipam-claim-reference`` names an
  IPAMClaim in the pod's namespace that owns the NIC's addresses (KubeVirt
  puts it there for a VM's NIC); it must be a valid object name.

``v1.multus-cni.io/default-network`` names exactly one network in either
form; it replaces the cluster network, so its NIC is ``eth0``.

Interfaces are named as Multus names them: the n-th attachment (counting
from 1, whether or not earlier ones chose a name) is ``net<n>`` unless it
gives ``interface``. Two NICs with the same name are refused, because the
second ADD would fail on the node anyway.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.core.errors import (
    DuplicateInterface,
    InvalidDefaultNetwork,
    InvalidNetworksAnnotation,
)

NETWORKS_KEY = "k8s.v1.cni.cncf.io/networks"
DEFAULT_NETWORK_KEY = "v1.multus-cni.io/default-network"
DEFAULT_INTERFACE = "eth0"

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_IFNAME_MAX = 15  # Linux IFNAMSIZ - 1
_IFNAME = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class NetworkSelection:
    """One NIC a pod asks for, before its NAD is looked up."""

    namespace: str
    name: str
    interface: str
    """Final interface name (given, ``net<n>`` or ``eth0`` for the default network)."""
    interface_given: bool = False
    ips: tuple[str, ...] = ()
    """Addresses from the JSON ``ips`` field, prefix length dropped."""
    mac: str | None = None
    default_route: tuple[str, ...] = ()
    """Gateways from the JSON ``default-route`` field (non-empty: this NIC is the default route)."""
    is_default_network: bool = False
    claim: str | None = None
    """The IPAMClaim (in the pod's namespace) owning this NIC's addresses."""

    @property
    def nad_key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class _Raw:
    namespace: str
    name: str
    interface: str | None
    ips: tuple[str, ...] = ()
    mac: str | None = None
    default_route: tuple[str, ...] = ()
    claim: str | None = None


def parse_pod_networks(
    annotations: Mapping[str, str], pod_namespace: str
) -> list[NetworkSelection]:
    """All NICs the pod asks for: the default network's first (if any), then attachments."""
    result: list[NetworkSelection] = []
    default_value = annotations.get(DEFAULT_NETWORK_KEY, "").strip()
    if default_value:
        result.append(_default_network(default_value, pod_namespace))
    value = annotations.get(NETWORKS_KEY, "").strip()
    if value:
        raws = _parse(value, pod_namespace, InvalidNetworksAnnotation, NETWORKS_KEY)
        for index, raw in enumerate(raws, start=1):
            result.append(_selection(raw, raw.interface or f"net{index}"))
    _refuse_duplicate_interfaces(result)
    return result


def _default_network(value: str, pod_namespace: str) -> NetworkSelection:
    raws = _parse(value, pod_namespace, InvalidDefaultNetwork, DEFAULT_NETWORK_KEY)
    if len(raws) != 1:
        raise InvalidDefaultNetwork(
            f"{DEFAULT_NETWORK_KEY} must name exactly one network, got {len(raws)}: {value!r}"
        )
    selection = _selection(raws[0], DEFAULT_INTERFACE)
    return NetworkSelection(
        namespace=selection.namespace,
        name=selection.name,
        interface=DEFAULT_INTERFACE,
        interface_given=False,
        ips=selection.ips,
        mac=selection.mac,
        default_route=selection.default_route,
        is_default_network=True,
        claim=selection.claim,
    )


def _selection(raw: _Raw, interface: str) -> NetworkSelection:
    return NetworkSelection(
        namespace=raw.namespace,
        name=raw.name,
        interface=interface,
        interface_given=raw.interface is not None,
        ips=raw.ips,
        mac=raw.mac,
        default_route=raw.default_route,
        claim=raw.claim,
    )


def _refuse_duplicate_interfaces(selections: list[NetworkSelection]) -> None:
    seen: dict[str, NetworkSelection] = {}
    for sel in selections:
        if sel.interface in seen:
            first = seen[sel.interface]
            raise DuplicateInterface(
                f"interface {sel.interface!r} is requested twice "
                f"({first.nad_key} and {sel.nad_key}); give each attachment its own name"
            )
        seen[sel.interface] = sel


def _parse(value: str, pod_namespace: str, error: type[Exception], key: str) -> list[_Raw]:
    if value.startswith("[") or value.startswith("{"):
        return _parse_json(value, pod_namespace, error, key)
    return [_parse_item(item, pod_namespace, error, key) for item in value.split(",")]


def _parse_item(item: str, pod_namespace: str, error: type[Exception], key: str) -> _Raw:
    text = item.strip()
    if not text:
        raise error(f"{key}: empty network name in the comma list")
    interface: str | None = None
    if "@" in text:
        text, interface = text.split("@", 1)
        if "@" in interface:
            raise error(f"{key}: {item.strip()!r} has more than one '@'")
        _check_interface(interface, error, key)
    parts = text.split("/")
    if len(parts) > 2:
        raise error(f"{key}: {item.strip()!r} has more than one '/'")
    namespace, name = (parts[0], parts[1]) if len(parts) == 2 else (pod_namespace, parts[0])
    _check_names(namespace, name, error, key)
    return _Raw(namespace=namespace, name=name, interface=interface)


def _parse_json(value: str, pod_namespace: str, error: type[Exception], key: str) -> list[_Raw]:
    try:
        doc = json.loads(value)
    except ValueError as exc:
        raise error(f"{key}: not valid JSON ({exc})") from exc
    if isinstance(doc, dict):
        doc = [doc]
    if not isinstance(doc, list):
        raise error(f"{key}: JSON must be a list of network objects")
    return [_parse_element(element, pod_namespace, error, key) for element in doc]


def _parse_element(element: Any, pod_namespace: str, error: type[Exception], key: str) -> _Raw:
    if not isinstance(element, dict):
        raise error(f"{key}: each JSON element must be an object, got {element!r}")
    name = _string(element, "name", error, key, required=True)
    namespace = _string(element, "namespace", error, key) or pod_namespace
    _check_names(namespace, name, error, key)
    interface = _string(element, "interface", error, key) or None
    if interface is not None:
        _check_interface(interface, error, key)
    mac = _string(element, "mac", error, key) or None
    ips = tuple(_address(ip, error, key, "ips") for ip in _strings(element, "ips", error, key))
    gateways = tuple(
        _address(gw, error, key, "default-route")
        for gw in _strings(element, "default-route", error, key)
    )
    claim = _string(element, "ipam-claim-reference", error, key) or None
    if claim is not None and (not _DNS_SUBDOMAIN.match(claim) or len(claim) > 253):
        raise error(f"{key}: 'ipam-claim-reference' {claim!r} is not a valid IPAMClaim name")
    return _Raw(namespace, name, interface, ips=ips, mac=mac, default_route=gateways, claim=claim)


def _string(
    element: dict[str, Any], field: str, error: type[Exception], key: str, *, required: bool = False
) -> str:
    value = element.get(field)
    if value is None:
        if required:
            raise error(f"{key}: network object {element!r} has no {field!r}")
        return ""
    if not isinstance(value, str):
        raise error(f"{key}: {field!r} must be a string, got {value!r}")
    if required and not value:
        raise error(f"{key}: {field!r} must not be empty")
    return value


def _strings(element: dict[str, Any], field: str, error: type[Exception], key: str) -> list[str]:
    value = element.get(field)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise error(f"{key}: {field!r} must be a list of strings, got {value!r}")
    return list(value)


def _address(text: str, error: type[Exception], key: str, field: str) -> str:
    """An address from ``ips``/``default-route``; Multus allows ``ip/prefix`` in ``ips``."""
    try:
        return str(ipaddress.ip_interface(text.strip()).ip)
    except ValueError as exc:
        raise error(f"{key}: {field!r} holds {text!r}, which is not an IP address") from exc


def _check_names(namespace: str, name: str, error: type[Exception], key: str) -> None:
    if not _DNS_LABEL.match(namespace) or len(namespace) > 63:
        raise error(f"{key}: {namespace!r} is not a valid namespace name")
    if not _DNS_SUBDOMAIN.match(name) or len(name) > 253:
        raise error(f"{key}: {name!r} is not a valid NetworkAttachmentDefinition name")


def _check_interface(interface: str, error: type[Exception], key: str) -> None:
    """The kernel's rules for a link name (dev_valid_name), and nicpool's: only
    letters, digits, ``-``, ``_`` and ``.`` (so ``@``, which keys a NIC in the
    store, and anything a command line could misread never get through)."""
    bad = not interface or len(interface.encode()) > _IFNAME_MAX or interface in {".", ".."}
    if bad or not _IFNAME.match(interface):
        raise error(
            f"{key}: {interface!r} is not a valid interface name "
            "(1-15 characters of letters, digits, '-', '_', '.')"
        )
