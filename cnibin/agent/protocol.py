"""The plugin <-> agent wire format, as pure functions (no I/O, no clock).

Field names are Kube-OVN's (``pod_name``, ``pod_namespace``, ``container_id``,
``net_ns``, ``if_name``, ``provider``, ``routes``; reply ``ips`` /
``mac_address`` / ``routes`` / ``mtu`` / ``nicname`` / ``dns``), so a
Kube-OVN plugin binary can talk to this agent and ours to theirs. Two
optional extensions: ``pod_uid`` (the runtime's K8S_POD_UID, checked against
the lease) and ``wait_seconds`` (CHECK asks with 0: never wait).

Every request field is parsed by :mod:`cnibin.agent.fields` before it is
used, and ``routes`` and ``dns`` are echoed only in their canonical form: a
main plugin hands the reply to ``ip`` as root.

Gateway and default route are returned only for the NIC that carries the
pod's default route: the attachment says so (``default-route`` in the
networks annotation), or the NIC is the pod's main one (``eth0``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cnibin.agent import fields
from store.core.identity import AttachmentRef, PodRef, PodUID, Provider
from store.core.records import Attachment

MAIN_NIC = "eth0"
MAX_BODY = 1 << 20


class RequestError(ValueError):
    """The request cannot be understood; answered with 400 and this message."""


@dataclass(frozen=True)
class AddRequest:
    """``/api/v1/add`` and ``/api/v1/del`` bodies (same shape, as in Kube-OVN)."""

    ref: AttachmentRef
    container_id: str = ""
    net_ns: str = ""
    if_name: str = ""
    routes: tuple[tuple[str, str], ...] = ()
    """Extra ``(dst, gw)`` routes from the network config."""
    pod_uid: PodUID | None = None
    wait_seconds: float | None = None
    dns: dict[str, Any] = field(default_factory=dict, compare=False)
    bridge: str = ""
    """nicpool's extension: the Linux bridge a main-plugin NIC asks to join (the
    node's agent decides whether that bridge may be joined, not the NAD)."""

    def candidates(self) -> tuple[AttachmentRef, ...]:
        """Where the lease may be stored: a pod that attaches one provider twice has
        one lease per NIC, keyed by provider *and* interface; otherwise by provider."""
        if not self.if_name:
            return (self.ref,)
        return (AttachmentRef(self.ref.pod, self.ref.provider, self.if_name), self.ref)


def _object(body: bytes) -> dict[str, Any]:
    if len(body) > MAX_BODY:
        raise RequestError(f"request body larger than {MAX_BODY} bytes")
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestError(f"request body is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise RequestError("request body must be a JSON object")
    return doc


def _text(doc: dict[str, Any], key: str, *, required: bool = False) -> str:
    value = doc.get(key, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise RequestError(f"{key} must be a string")
    if required and not value:
        raise RequestError(f"{key} is required")
    return value


def _name(
    doc: dict[str, Any], key: str, parse: Callable[[str], str], required: bool = False
) -> str:
    """A string field checked by ``parse`` (an empty optional one is left empty)."""
    value = _text(doc, key, required=required)
    return _parsed(key, parse, value) if value else value


def _parsed(key: str, parse: Callable[[Any], Any], value: Any) -> Any:
    try:
        return parse(value)
    except ValueError as exc:
        raise RequestError(f"{key}: {exc}") from None


def parse_add_request(body: bytes) -> AddRequest:
    """Validate a request body; every problem becomes a :class:`RequestError`."""
    doc = _object(body)
    uid = _name(doc, "pod_uid", fields.pod_uid)
    pod = PodRef(
        _name(doc, "pod_namespace", fields.namespace, required=True),
        _name(doc, "pod_name", fields.pod_name, required=True),
    )
    return AddRequest(
        ref=AttachmentRef(pod, Provider(_name(doc, "provider", fields.provider, required=True))),
        container_id=_name(doc, "container_id", fields.container_id),
        net_ns=_name(doc, "net_ns", fields.net_ns),
        if_name=_name(doc, "if_name", fields.if_name),
        routes=_parsed("routes", fields.routes, doc.get("routes")),
        pod_uid=PodUID(uid) if uid else None,
        wait_seconds=_parsed("wait_seconds", fields.wait_seconds, doc.get("wait_seconds")),
        dns=_parsed("dns", fields.dns, doc.get("dns")),
        bridge=_name(doc, "bridge", fields.if_name),
    )


def parse_valid_attachments(body: bytes) -> set[tuple[str, str]]:
    """``/api/v1/gc``: the runtime's ``cni.dev/valid-attachments`` list."""
    items = _object(body).get("valid_attachments") or []
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise RequestError("valid_attachments must be a list of objects")
    return {(str(i.get("containerID", "")), str(i.get("ifname", ""))) for i in items}


def carries_default_route(att: Attachment, request: AddRequest) -> bool:
    return att.default_route or request.if_name == MAIN_NIC


def _has_default(routes: list[dict[str, str]], family: int) -> bool:
    wanted = "::/0" if family == 6 else "0.0.0.0/0"
    return any(
        (r.get("dst") or "") in ("", wanted) and (":" in r.get("gw", "")) == (family == 6)
        for r in routes
    )


def build_add_reply(att: Attachment, request: AddRequest) -> dict[str, Any]:
    """Kube-OVN v1.16's ``CniResponse`` for one NIC."""
    default = carries_default_route(att, request)
    routes = [r.to_json() for r in att.routes]
    routes += [{"dst": dst, "gw": gw} if dst else {"gw": gw} for dst, gw in request.routes]
    ips = []
    for leased in sorted(att.ips, key=lambda i: i.family):
        gateway = leased.gateway if default else ""
        ips.append(
            {
                "protocol": "IPv6" if leased.family == 6 else "IPv4",
                "ip": leased.ip,
                "cidr": leased.cidr,
                "gateway": gateway,
            }
        )
        if gateway and not _has_default(routes, leased.family):
            routes.append({"gw": gateway})
    return {
        "ips": ips,
        "mac_address": att.mac,
        "routes": routes,
        "mtu": att.mtu,
        "nicname": request.if_name,
        "dns": request.dns,
    }


def error_body(message: str) -> dict[str, str]:
    return {"error": message}
