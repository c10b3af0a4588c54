"""Kube-OVN ``IP`` objects for allocated attachments, so Kube-OVN tooling sees them.

Name as Kube-OVN names an attachment's IP: ``<pod>.<namespace>.<provider>``.
The object mirrors the lease; etcd stays authoritative (the IP objects are
a view, rewritten when they drift and deleted when the lease is released).

A NIC holding an owner's addresses (an IPAMClaim, a VM) has one IP object
per owner, named by the owner as Kube-OVN's keep-vm-ip names a VM's
(``<vm>.<namespace>.<provider>``, ``<claim>.<namespace>.<provider>``): every
holder pod writes the same object, and it goes when the owner's addresses do.
"""

from __future__ import annotations

import contextlib
from typing import Any

from reconciler.core.workloads import STATEFULSET
from reconciler.kube.client import KubeClient
from reconciler.kube.errors import AlreadyExists, KubeConflict, NotFound
from reconciler.kube.resources import IPS
from store.core.identity import AttachmentRef, OwnerRef
from store.core.records import Attachment

MANAGED_BY = "app.kubernetes.io/managed-by"
"""Label on every IP object nicpool writes (value ``nicpool``); the GC touches no other."""


def ip_name(ref: AttachmentRef) -> str:
    """The IP object's name: ``<pod>.<namespace>.<provider>`` as Kube-OVN names an
    attachment's IP (the one definition; nicpoolctl audit uses it too)."""
    return f"{ref.pod.name}.{ref.pod.namespace}.{ref.qualified}"


def owner_ip_name(owner: OwnerRef, provider: str) -> str:
    """The IP object of an owner's addresses (``provider`` as annotations spell it)."""
    return f"{owner.name}.{owner.namespace}.{provider}"


def ip_object_name(att: Attachment) -> str:
    """The IP object showing ``att``'s addresses: its owner's, else its pod NIC's."""
    if att.owner is not None:
        return owner_ip_name(att.owner, att.ref.qualified)
    return ip_name(att.ref)


def ip_spec(att: Attachment, node: str = "") -> dict[str, Any]:
    """The IP object's spec; ``node`` is the pod's node once it is scheduled."""
    by_family = {ip.family: ip.ip for ip in att.ips}
    return {
        "podName": att.owner.name if att.owner is not None else att.ref.pod.name,
        "namespace": att.ref.pod.namespace,
        "subnet": att.subnet,
        "nodeName": node,
        "ipAddress": att.ip_csv(),
        "v4IpAddress": by_family.get(4, ""),
        "v6IpAddress": by_family.get(6, ""),
        "macAddress": att.mac,
        "containerID": "",
        "podType": STATEFULSET if att.workload and att.workload.kind == STATEFULSET else "",
    }


def ensure_ip_object(
    kube: KubeClient,
    att: Attachment,
    current: dict[str, Any] | None,
    written: dict[str, dict[str, Any]] | None = None,
    *,
    node: str = "",
) -> None:
    """Create the IP object, or rewrite it when its spec drifted from the lease.

    ``written`` remembers what this process wrote, so the echo of its own
    annotation patch (which re-queues the pod before the IP informer has
    caught up) costs no API call.
    """
    name = ip_object_name(att)
    spec = ip_spec(att, node)
    if current is None and written is not None and written.get(name) == spec:
        return
    try:
        _write(kube, name, att, spec, current)
    finally:
        if written is not None:
            written[name] = spec


def forget_ip_object(written: dict[str, dict[str, Any]], name: str) -> None:
    written.pop(name, None)


def _write(
    kube: KubeClient,
    name: str,
    att: Attachment,
    spec: dict[str, Any],
    current: dict[str, Any] | None,
) -> None:
    labels = {"ovn.kubernetes.io/subnet": att.subnet, MANAGED_BY: "nicpool"}
    if current is not None and _same(current.get("spec") or {}, spec):
        return
    body: dict[str, Any] = {
        "apiVersion": "kubeovn.io/v1",
        "kind": "IP",
        "metadata": {"name": name, "labels": labels},
        "spec": spec,
    }
    if current is None:
        try:
            kube.create(IPS, None, body)
            return
        except AlreadyExists:
            current = kube.get(IPS, None, name)
            if current is None or _same(current.get("spec") or {}, spec):
                return
    body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
    kube.update(IPS, None, name, body)


def delete_ip_object(kube: KubeClient, name: str, *, resource_version: str | None = None) -> None:
    """Delete the IP object; with ``resource_version``, only if nobody rewrote it since."""
    if resource_version is None:
        kube.delete(IPS, None, name)
        return
    # NotFound: gone already; KubeConflict: rewritten for a new lease since, so kept.
    with contextlib.suppress(NotFound, KubeConflict):
        kube.request(
            "DELETE",
            IPS.item(None, name),
            body={"preconditions": {"resourceVersion": resource_version}},
        )


def _same(current: dict[str, Any], wanted: dict[str, Any]) -> bool:
    return all(current.get(k, "") == v for k, v in wanted.items())
