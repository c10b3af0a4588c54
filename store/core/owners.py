"""Addresses leased to an owner that outlives its pods: an IPAMClaim or a VM's NIC.

A NIC is normally leased to its pod: the attachment is the record of the
allocation and the pod's deletion ends it. DESIGN.md names two other owners:
an ``IPAMClaim`` named by the NIC's networks element, and a KubeVirt VM's NIC
(Kube-OVN's keep-vm-ip). Their addresses must survive the pod (a VM restart
runs a new pod) and be shared while two pods run the VM (live migration).

So the owner gets a record of its own, ``owners/...`` (:class:`OwnerRecord`):
its UID, subnet, addresses, MAC and its *holders*, the pod NICs currently
using them, in the order they joined. Every holder keeps an attachment of
its own, keyed by its pod as ever (the node agent's one read by pod NIC),
carrying the owner's addresses and naming the owner; the leases and the MAC
index point at the owner record instead of a pod. Hence:

* sharing an address is legitimate exactly between attachments that name
  the same owner and are listed as its holders (the audit checks it);
* the first holder allocates (bits, leases, MAC index, owner record, its
  attachment: one transaction); a later holder *joins* (its attachment and
  the rewritten holder list: no bit touched), compared against the owner
  record's revision so two joins or a join and a release never interleave;
* a holder *leaves* when its pod is gone: its attachment and its entry go,
  never a bit (:func:`leave_ops`); the owner's end frees the bits, the
  records and any holder attachment left, in one transaction
  (:func:`plan_owner_release`).

Pure, like :mod:`store.core.plan`: values in, compares and ops out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from store.core.identity import (
    AttachmentRef,
    Mac,
    OwnerRef,
    PodRef,
    PodUID,
    Provider,
    Revision,
    SubnetName,
)
from store.core.mac import parse_mac
from store.core.ops import Compare, CreateRevisionIs, Delete, ModRevisionIs, Op, Put
from store.core.records import (
    Attachment,
    LeasedIP,
    RecordError,
    encode_attachment,
    owner_from_json,
    owner_json,
)
from store.core.requests import AllocationRequest
from store.errors import OwnerAddressMismatch, OwnerInAnotherSubnet, PreviousOwnerNotReleased

if TYPE_CHECKING:
    from store.core.keys import Keys
    from store.core.plan import BatchPlan, Existing


@dataclass(frozen=True)
class Holder:
    """A pod NIC using an owner's addresses."""

    ref: AttachmentRef
    uid: PodUID


@dataclass(frozen=True)
class OwnerRecord:
    owner: OwnerRef
    uid: str
    """The owner's UID; empty when it was not known (a VM seen without its VirtualMachine)."""
    subnet: SubnetName
    provider: str
    """The NIC's provider as annotations spell it (``AttachmentRef.qualified``)."""
    ips: tuple[LeasedIP, ...]
    mac: Mac
    holders: tuple[Holder, ...] = ()
    """Join order: the first is the oldest pod still holding the addresses."""
    created: float = 0.0
    fence: Revision = Revision(0)

    def ip_csv(self) -> str:
        return ",".join(leased.ip for leased in sorted(self.ips, key=lambda i: i.family))

    def joined(self, ref: AttachmentRef, uid: PodUID) -> OwnerRecord:
        kept = tuple(h for h in self.holders if h.ref != ref)
        return replace(self, holders=(*kept, Holder(ref, uid)))

    def left(self, ref: AttachmentRef, uid: PodUID) -> OwnerRecord:
        return replace(self, holders=tuple(h for h in self.holders if h != Holder(ref, uid)))


@dataclass(frozen=True)
class ExistingOwner:
    record: OwnerRecord
    mod_revision: Revision


def encode_owner(record: OwnerRecord) -> bytes:
    doc: dict[str, Any] = {
        "owner": owner_json(record.owner),
        "uid": record.uid,
        "subnet": record.subnet,
        "provider": record.provider,
        "ips": [
            {"family": i.family, "ip": i.ip, "cidr": i.cidr, "gateway": i.gateway}
            for i in record.ips
        ],
        "mac": record.mac,
        "holders": [
            {
                "namespace": h.ref.pod.namespace,
                "pod": h.ref.pod.name,
                "provider": h.ref.provider,
                "uid": h.uid,
                **({"nic": h.ref.interface} if h.ref.interface else {}),
            }
            for h in record.holders
        ],
        "created": record.created,
        "fence": record.fence,
    }
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


def decode_owner(raw: bytes) -> OwnerRecord:
    try:
        doc = json.loads(raw)
        return OwnerRecord(
            owner=owner_from_json(doc["owner"]),
            uid=str(doc["uid"]),
            subnet=SubnetName(str(doc["subnet"])),
            provider=str(doc["provider"]),
            ips=tuple(
                LeasedIP(family=i["family"], ip=i["ip"], cidr=i["cidr"], gateway=i["gateway"])
                for i in doc["ips"]
            ),
            mac=Mac(doc["mac"]),
            holders=tuple(
                Holder(
                    AttachmentRef(
                        PodRef(h["namespace"], h["pod"]),
                        Provider(h["provider"]),
                        str(h.get("nic", "")),
                    ),
                    PodUID(h["uid"]),
                )
                for h in doc["holders"]
            ),
            created=float(doc.get("created", 0.0)),
            fence=Revision(int(doc.get("fence", 0))),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise RecordError(f"unreadable owner record: {exc}") from exc


# -- planning ------------------------------------------------------------------


def add_owned(
    plan: BatchPlan,
    request: AllocationRequest,
    found: ExistingOwner | None,
    mac_holders: Mapping[str, str],
) -> Attachment:
    """Allocate for the owner's first holder, or join a later one (no bit touched)."""
    from store.core.plan import Deferred

    assert request.owner is not None
    key = plan.keys.owner(request.owner)
    if request.owner in plan.owners_written:
        raise Deferred(f"{request.ref}: {request.owner} is already written by this transaction")
    if found is None:
        attachment = plan._allocate(request, None, mac_holders)
        record = OwnerRecord(
            owner=request.owner,
            uid=request.owner_uid,
            subnet=plan.spec.name,
            provider=request.ref.qualified,
            ips=attachment.ips,
            mac=attachment.mac,
            holders=(Holder(request.ref, request.uid),),
            created=plan.now,
            fence=plan.fence_revision(),
        )
        plan.compares.append(CreateRevisionIs(key, Revision(0)))
    else:
        record = _check_join(found.record, request, plan.spec.name)
        attachment = plan.attachment(request, record.ips, record.mac)
        att_key = plan.keys.attachment(request.ref)
        plan.compares += [
            ModRevisionIs(key, found.mod_revision),
            CreateRevisionIs(att_key, Revision(0)),
        ]
        plan.ops.append(Put(att_key, encode_attachment(attachment)))
        record = record.joined(request.ref, request.uid)
    record = replace(record, fence=plan.fence_revision())
    plan.ops.append(Put(key, encode_owner(record)))
    plan.owners_written[request.owner] = record
    return attachment


def _check_join(record: OwnerRecord, request: AllocationRequest, subnet: SubnetName) -> OwnerRecord:
    """The owner's record as this request may join it, or the refusal."""
    if record.subnet != subnet:
        raise OwnerInAnotherSubnet(
            f"{record.owner} holds {record.ip_csv()} in subnet {record.subnet}; "
            f"{request.ref} asks for subnet {subnet} (an owner's addresses never move)"
        )
    if record.uid and request.owner_uid and record.uid != request.owner_uid:
        raise PreviousOwnerNotReleased(
            f"{record.owner}: an earlier object of that name (uid {record.uid}) still holds "
            f"{record.ip_csv()}; they are released first"
        )
    held = {leased.ip for leased in record.ips}
    if not set(request.fixed_ips) <= held:
        raise OwnerAddressMismatch(
            f"{request.ref} asks for {','.join(request.fixed_ips)} but {record.owner} "
            f"holds {record.ip_csv()}"
        )
    if request.mac is not None and parse_mac(request.mac) != record.mac:
        raise OwnerAddressMismatch(
            f"{request.ref} asks for MAC {request.mac} but {record.owner} holds {record.mac}"
        )
    if not record.uid and request.owner_uid:
        return replace(record, uid=request.owner_uid)  # the VM's UID, learnt late
    return record


def leave_ops(
    keys: Keys, attachment: Attachment, att_revision: Revision, found: ExistingOwner | None
) -> tuple[list[Compare], list[Op], OwnerRecord | None]:
    """A holder's pod is gone: its attachment and its holder entry go, never a bit."""
    compares: list[Compare] = [ModRevisionIs(keys.attachment(attachment.ref), att_revision)]
    ops: list[Op] = [Delete(keys.attachment(attachment.ref))]
    if found is None or attachment.owner is None:
        return compares, ops, None
    record = found.record.left(attachment.ref, attachment.uid)
    key = keys.owner(attachment.owner)
    compares.append(ModRevisionIs(key, found.mod_revision))
    ops.append(Put(key, encode_owner(record)))
    return compares, ops, record


def owner_release_ops(
    keys: Keys, found: ExistingOwner, holders: Sequence[Existing]
) -> tuple[list[Compare], list[Op]]:
    """Deleting an owner's records and the holder attachments still naming it
    (``holders``, each compared as read), guarded by the owner record's revision."""
    record = found.record
    compares: list[Compare] = [ModRevisionIs(keys.owner(record.owner), found.mod_revision)]
    ops: list[Op] = [Delete(keys.owner(record.owner)), Delete(keys.mac(record.subnet, record.mac))]
    ops += [Delete(keys.lease(record.subnet, leased.ip)) for leased in record.ips]
    for held in holders:
        if held.attachment.owner == record.owner:
            att_key = keys.attachment(held.attachment.ref)
            compares.append(ModRevisionIs(att_key, held.mod_revision))
            ops.append(Delete(att_key))
    return compares, ops


def plan_owner_release(plan: BatchPlan, found: ExistingOwner, holders: Sequence[Existing]) -> None:
    """The owner ended: its bits go back and its records go, in ``plan``'s transaction."""
    plan.free(found.record.ips)  # stamped: the addresses cool down too
    compares, ops = owner_release_ops(plan.keys, found, holders)
    plan.compares += compares
    plan.ops += ops
