"""Every way a lease ends or a pod lets go of one: fenced transactions, one each.

* :func:`release`: a pod NIC's own addresses go back (bits, leases, MAC index,
  attachment). Called for a NIC that holds an owner's addresses, it only
  leaves: DESIGN.md allows nothing but the owner's end to free those.
* :func:`leave`: a holder of an owner's addresses (an IPAMClaim's, a VM
  NIC's) is gone: its attachment and its holder entry go, no bit does.
* :func:`release_owner`: the owner ended: its bits, records and whatever
  holder attachments still name it go together.
* :func:`clear_predecessor`: before a pod NIC is allocated, a proven-gone
  predecessor of the same name is cleared in a transaction of its own when
  it lives in another subnet, involves an owner or borrows a Vip's address
  (the allocation's own plan then starts from nothing).

Each reads what it changes and compares it in its transaction (plus the
fence, :mod:`store.guard`); a lost race is re-read and retried
(:mod:`store.retry`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from store.core.identity import AttachmentRef, OwnerRef, PodUID, Revision
from store.core.ops import Compare, CreateRevisionIs, Get, KeyValue
from store.core.owners import (
    ExistingOwner,
    OwnerRecord,
    decode_owner,
    leave_ops,
    owner_release_ops,
    plan_owner_release,
)
from store.core.plan import Existing, release_ops
from store.core.records import Attachment, decode_attachment
from store.core.requests import AllocationRequest, Fencing
from store.errors import UnknownSubnet
from store.guard import guarded_txn
from store.retry import retrying

if TYPE_CHECKING:
    from store.leases import Ipam


@dataclass(frozen=True)
class Left:
    """A holder that left, and its owner's record as it is now (None: no record)."""

    attachment: Attachment
    owner: OwnerRecord | None


def release(
    ipam: Ipam,
    ref: AttachmentRef,
    *,
    fence: Fencing,
    uid: PodUID | None,
    unless_exists: Sequence[str] = (),
) -> Attachment | None:
    """``unless_exists``: keys whose existence means "not now" (a Vip's binding, when
    its reservation is released): None is returned when one exists, and the
    transaction compares their absence, so one written meanwhile makes it re-read."""
    for attempt in retrying("release", subject=ref):
        with attempt:
            return _release_once(ipam, ref, fence, uid, unless_exists)
    raise AssertionError("unreachable: retrying re-raises")


def _release_once(
    ipam: Ipam,
    ref: AttachmentRef,
    fence: Fencing,
    uid: PodUID | None,
    unless_exists: Sequence[str],
) -> Attachment | None:
    kv, _ = ipam.client.get(ipam.keys.attachment(ref))
    if kv is None:
        return None
    attachment = decode_attachment(kv.value)
    if uid is not None and attachment.uid != uid:
        return None
    if attachment.owner is not None:
        left = _leave_once(ipam, kv, attachment, fence)
        return left.attachment if left is not None else None
    if any(ipam.client.get(key)[0] is not None for key in unless_exists):
        return None
    absent: list[Compare] = [CreateRevisionIs(key, Revision(0)) for key in unless_exists]
    state = ipam.state(attachment.subnet)
    with state.lock:
        try:
            plan = ipam.new_plan(attachment.subnet, state, fence)
        except UnknownSubnet:
            # The subnet is gone from the store: delete the records, no bits to clear.
            compare, deletes = release_ops(ipam.keys, attachment, kv.mod_revision)
            ipam.txn(state, [compare, *absent], deletes, fence)
        else:
            plan.release(attachment, kv.mod_revision)
            plan.compares += absent
            ipam.commit(state, plan, fence)
    return attachment


# -- holders and owners ----------------------------------------------------------


def leave(ipam: Ipam, ref: AttachmentRef, *, fence: Fencing, uid: PodUID | None) -> Left | None:
    """None when there is nothing to leave (or ``uid`` says another pod holds it now)."""
    for attempt in retrying("release", subject=ref):
        with attempt:
            kv, _ = ipam.client.get(ipam.keys.attachment(ref))
            if kv is None:
                return None
            attachment = decode_attachment(kv.value)
            if uid is not None and attachment.uid != uid:
                return None
            return _leave_once(ipam, kv, attachment, fence)
    raise AssertionError("unreachable: retrying re-raises")


def _leave_once(ipam: Ipam, kv: KeyValue, attachment: Attachment, fence: Fencing) -> Left:
    found = None if attachment.owner is None else owner_record(ipam, attachment.owner)
    compares, ops, record = leave_ops(ipam.keys, attachment, kv.mod_revision, found)
    guarded_txn(ipam.client, compares, ops, fence)
    return Left(attachment, record)


def owner_record(ipam: Ipam, owner: OwnerRef) -> ExistingOwner | None:
    kv, _ = ipam.client.get(ipam.keys.owner(owner))
    return None if kv is None else ExistingOwner(decode_owner(kv.value), kv.mod_revision)


def release_owner(
    ipam: Ipam, owner: OwnerRef, *, fence: Fencing, uid: str | None
) -> OwnerRecord | None:
    """Free ``owner``'s addresses; None when it has none, or when ``uid`` is given and
    the record belongs to another object of that name (a re-created claim)."""
    for attempt in retrying("release", subject=owner):
        with attempt:
            found = owner_record(ipam, owner)
            if found is None or (uid is not None and found.record.uid not in ("", uid)):
                return None
            _release_owner_once(ipam, found, fence)
            return found.record
    raise AssertionError("unreachable: retrying re-raises")


def _release_owner_once(ipam: Ipam, found: ExistingOwner, fence: Fencing) -> None:
    record = found.record
    refs = [holder.ref for holder in record.holders]
    outcome = ipam.client.txn([], [Get(ipam.keys.attachment(ref)) for ref in refs])
    holders = [Existing(decode_attachment(kv.value), kv.mod_revision) for kv in outcome.gets if kv]
    state = ipam.state(record.subnet)
    with state.lock:
        try:
            plan = ipam.new_plan(record.subnet, state, fence)
        except UnknownSubnet:
            plan = None
        if plan is not None:
            plan_owner_release(plan, found, holders)
            ipam.commit(state, plan, fence)
            return
        # The subnet is gone from the store: the records go, no bit to clear.
        compares, ops = owner_release_ops(ipam.keys, found, holders)
        ipam.txn(state, compares, ops, fence)


def clear_predecessor(
    ipam: Ipam, request: AllocationRequest, found: Existing | None, fence: Fencing
) -> bool:
    """Clear a proven-gone predecessor of ``request``'s pod NIC in its own transaction,
    when it lives in another subnet or either of them involves an owner. True when
    cleared (the allocation then plans from nothing)."""
    if found is None or found.attachment.uid == request.uid:
        return False  # nothing there, or the pod's own attachment (idempotent)
    if request.replaces != found.attachment.uid:
        return False  # no proof the holder is gone: plan.add refuses it
    old = found.attachment
    if old.owner is not None:
        found_owner = owner_record(ipam, old.owner)
        compares, ops, _ = leave_ops(ipam.keys, old, found.mod_revision, found_owner)
        guarded_txn(ipam.client, compares, ops, fence)
        return True
    if old.subnet == request.subnet and request.owner is None and old.vip is None:
        return False  # the allocation's own plan replaces it (never a Vip's borrower)
    state = ipam.state(old.subnet)
    # That subnet's lock is not taken (another thread may hold it while waiting
    # for this one's): a fresh plan with its own compares, then its cache is dropped.
    try:
        plan = ipam.new_plan(old.subnet, type(state)(), fence)
    except UnknownSubnet:
        compare, deletes = release_ops(ipam.keys, old, found.mod_revision)
        guarded_txn(ipam.client, [compare], deletes, fence)
    else:
        plan.release(old, found.mod_revision)
        compares, ops = plan.finish()
        guarded_txn(ipam.client, compares, ops, fence)
    state.cache.forget()
    return True
