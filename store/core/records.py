"""What etcd holds about an allocation, and its JSON form.

Two records per allocation, written in the same transaction:

* the *attachment* (key ``attachments/<ns>/<pod>/<provider>``): everything
  the node agent needs to answer the CNI plugin for one NIC, so the agent
  answers with exactly one etcd read;
* one *lease* per address (key ``subnets/<subnet>/leases/<ip>``): who holds
  the address, so a fixed-address request or an audit finds the holder
  without scanning attachments.

A NIC leased to an owner that outlives its pods (an IPAMClaim, a VM) has
its attachment name that owner (``owner``), and its leases name the owner
instead of a pod NIC; see :mod:`store.core.owners`. The field is written
only when set, so a pod-owned record is byte for byte what it was before
owners existed, and a record without it decodes as pod-owned.

Records are versioned by the key prefix (``/nicpool/v1/``); decoding rejects
a record it cannot read instead of guessing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from store.core.identity import (
    IPAMCLAIM,
    VIRTUAL_MACHINE,
    AttachmentRef,
    Family,
    Mac,
    OwnerRef,
    PodRef,
    PodUID,
    Provider,
    Revision,
    SubnetName,
)


@dataclass(frozen=True)
class Route:
    """A route for one NIC; ``dst`` empty means the default route (Kube-OVN)."""

    dst: str
    gw: str

    def to_json(self) -> dict[str, str]:
        return {"dst": self.dst, "gw": self.gw} if self.dst else {"gw": self.gw}


@dataclass(frozen=True)
class WorkloadRef:
    """The owning workload, for StatefulSet retention and pool bookkeeping."""

    kind: str
    name: str
    uid: str


@dataclass(frozen=True)
class LeasedIP:
    """One address of an attachment, with what the CNI result needs about it."""

    family: Family
    ip: str
    cidr: str
    gateway: str


@dataclass(frozen=True)
class Attachment:
    """One pod NIC's allocation, as stored and as the agent reads it."""

    ref: AttachmentRef
    uid: PodUID
    subnet: SubnetName
    interface: str
    ips: tuple[LeasedIP, ...]
    mac: Mac
    routes: tuple[Route, ...] = ()
    default_route: bool = False
    """True when this NIC carries the pod's default route (the agent then
    returns the gateway and a default route)."""
    workload: WorkloadRef | None = None
    mtu: int = 0
    created: float = 0.0
    fence: Revision = Revision(0)
    """The writer's fencing revision (which leader term wrote it)."""
    release_requested: bool = False
    """An operator asked for this NIC's release (``nicpoolctl release --force``) while
    its pod might live: the controller frees it once the pod is gone, whatever
    StatefulSet retention would otherwise keep."""
    owner: OwnerRef | None = None
    """The claim or VM whose addresses this pod NIC holds; None: the pod's own."""
    vip: str | None = None
    """Set when this NIC borrows the address of a Kube-OVN ``Vip`` (its name): the
    Vip's own reservation keeps the lease, bit and MAC (``store.core.vips``), so
    releasing this NIC frees nothing but the NIC and its binding."""

    def ip_csv(self) -> str:
        """Kube-OVN's ``ip_address`` annotation value: ``v4`` / ``v6`` / ``v4,v6``."""
        return ",".join(leased.ip for leased in sorted(self.ips, key=lambda i: i.family))

    def cidr_csv(self) -> str:
        return ",".join(leased.cidr for leased in sorted(self.ips, key=lambda i: i.family))

    def gateway_csv(self) -> str:
        return ",".join(leased.gateway for leased in sorted(self.ips, key=lambda i: i.family))


def _workload_json(workload: WorkloadRef | None) -> dict[str, str] | None:
    if workload is None:
        return None
    return {"kind": workload.kind, "name": workload.name, "uid": workload.uid}


_ENCODER = json.JSONEncoder(separators=(",", ":"), sort_keys=True)
"""Built once: ``json.dumps`` with arguments builds an encoder per call."""


def _dumps(doc: dict[str, Any]) -> bytes:
    """Compact, key-sorted JSON: equal records are equal bytes."""
    return _ENCODER.encode(doc).encode()


class RecordError(ValueError):
    """A stored record nicpool cannot read (corrupt, or written by a newer format)."""


def encode_attachment(att: Attachment) -> bytes:
    doc: dict[str, Any] = {
        "pod": {"namespace": att.ref.pod.namespace, "name": att.ref.pod.name, "uid": att.uid},
        "provider": att.ref.provider,
        "subnet": att.subnet,
        "interface": att.interface,
        "ips": [
            {"family": i.family, "ip": i.ip, "cidr": i.cidr, "gateway": i.gateway} for i in att.ips
        ],
        "mac": att.mac,
        "routes": [r.to_json() for r in att.routes],
        "default_route": att.default_route,
        "workload": _workload_json(att.workload),
        "mtu": att.mtu,
        "created": att.created,
        "fence": att.fence,
    }
    if att.ref.interface:
        doc["nic"] = att.ref.interface  # only for a provider attached twice
    if att.release_requested:
        doc["release"] = True
    if att.owner is not None:
        doc["owner"] = owner_json(att.owner)  # only when owned: old bytes unchanged
    if att.vip is not None:
        doc["vip"] = att.vip  # only for a NIC that borrows a Vip's address
    return _dumps(doc)


def decode_attachment(raw: bytes) -> Attachment:
    try:
        doc = json.loads(raw)
        pod = doc["pod"]
        workload = doc.get("workload")
        return Attachment(
            ref=AttachmentRef(
                PodRef(pod["namespace"], pod["name"]),
                Provider(doc["provider"]),
                str(doc.get("nic", "")),
            ),
            uid=PodUID(pod["uid"]),
            subnet=SubnetName(doc["subnet"]),
            interface=doc["interface"],
            ips=tuple(
                LeasedIP(family=i["family"], ip=i["ip"], cidr=i["cidr"], gateway=i["gateway"])
                for i in doc["ips"]
            ),
            mac=Mac(doc["mac"]),
            routes=tuple(Route(dst=r.get("dst", ""), gw=r.get("gw", "")) for r in doc["routes"]),
            default_route=bool(doc.get("default_route", False)),
            workload=None if workload is None else WorkloadRef(**workload),
            mtu=int(doc.get("mtu", 0)),
            created=float(doc.get("created", 0.0)),
            fence=Revision(int(doc.get("fence", 0))),
            release_requested=bool(doc.get("release", False)),
            owner=None if doc.get("owner") is None else owner_from_json(doc["owner"]),
            vip=None if doc.get("vip") is None else str(doc["vip"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise RecordError(f"unreadable attachment record: {exc}") from exc


def owner_json(owner: OwnerRef) -> dict[str, str]:
    doc = {"kind": owner.kind, "namespace": owner.namespace, "name": owner.name}
    if owner.nic:
        doc["nic"] = owner.nic
    return doc


def owner_from_json(doc: dict[str, Any]) -> OwnerRef:
    kind = doc["kind"]
    if kind not in (IPAMCLAIM, VIRTUAL_MACHINE):
        raise ValueError(f"unknown owner kind {kind!r}")
    return OwnerRef(kind, str(doc["namespace"]), str(doc["name"]), str(doc.get("nic", "")))


@dataclass(frozen=True)
class Lease:
    """Who holds one address of a subnet: a pod NIC, or an owner (claim, VM NIC)."""

    subnet: SubnetName
    ip: str
    owner: AttachmentRef | OwnerRef
    uid: str
    """The pod's UID, or the owner's (empty when the VM's was not known)."""
    mac: Mac
    interface: str
    workload: WorkloadRef | None = None
    state: str = "allocated"
    created: float = 0.0
    fence: Revision = Revision(0)
    provider: str = ""
    """Owned leases only: the NIC's provider as annotations spell it (``qualified``)."""

    @property
    def nic_name(self) -> str:
        """The NIC's provider as annotations spell it."""
        return self.owner.qualified if isinstance(self.owner, AttachmentRef) else self.provider


def encode_lease(lease: Lease) -> bytes:
    owner = lease.owner
    doc: dict[str, Any] = {
        "subnet": lease.subnet,
        "ip": lease.ip,
        "owner": owner_json(owner)
        if isinstance(owner, OwnerRef)
        else {
            "namespace": owner.pod.namespace,
            "name": owner.pod.name,
            "provider": owner.provider,
            **({"nic": owner.interface} if owner.interface else {}),
        },
        "uid": lease.uid,
        "mac": lease.mac,
        "interface": lease.interface,
        "workload": _workload_json(lease.workload),
        "state": lease.state,
        "created": lease.created,
        "fence": lease.fence,
    }
    if isinstance(owner, OwnerRef):
        doc["provider"] = lease.provider
    return _dumps(doc)


def decode_lease(raw: bytes) -> Lease:
    try:
        doc = json.loads(raw)
        owner = doc["owner"]
        workload = doc.get("workload")
        return Lease(
            subnet=SubnetName(doc["subnet"]),
            ip=doc["ip"],
            owner=owner_from_json(owner)
            if "kind" in owner
            else AttachmentRef(
                PodRef(owner["namespace"], owner["name"]),
                Provider(owner["provider"]),
                str(owner.get("nic", "")),
            ),
            uid=str(doc["uid"]),
            mac=Mac(doc["mac"]),
            interface=doc["interface"],
            workload=None if workload is None else WorkloadRef(**workload),
            state=doc.get("state", "allocated"),
            created=float(doc.get("created", 0.0)),
            fence=Revision(int(doc.get("fence", 0))),
            provider=str(doc.get("provider", "")),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise RecordError(f"unreadable lease record: {exc}") from exc
