"""Pods holding an owner's addresses, and owners ending (leader only).

An IPAMClaim or a VM's NIC owns addresses that several pods may hold in
turn or at once (:mod:`store.core.owners`). Here the controller:

* lets a holder go when its pod is gone (:func:`leave`): its attachment and
  holder entry, never the addresses;
* frees the owner's addresses once the owner has ended and no holder pod
  still runs (:func:`settle_owner`), checked against the apiserver itself,
  never the cache alone, just before it frees (as the pod GC re-checks);
* refuses a second concurrent holder of a claim unless both pods run one
  VirtualMachineInstance (a live migration): another pod sharing a claim's
  address while the first runs would put it twice on the wire
  (:func:`sharing_refusals`).

Every change to a claim's holders queues the claim, whose status reports
its addresses and holder (:mod:`reconciler.claimsync`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from reconciler.core.claims import virt_launcher_vm
from reconciler.core.errors import ClaimRefusal, IPAMClaimInUse
from reconciler.core.owners import object_state, owner_alive, releasable
from reconciler.core.planning import NicPlan, PodView
from reconciler.ipobjects import delete_ip_object, forget_ip_object, owner_ip_name
from reconciler.kube.resources import (
    IPAMCLAIMS,
    PODS,
    VIRTUALMACHINEINSTANCES,
    VIRTUALMACHINES,
)
from reconciler.objects import meta, pod_uid
from reconciler.runtime import Runtime
from store.core.identity import IPAMCLAIM, OwnerRef
from store.core.owners import Holder, OwnerRecord
from store.core.records import Attachment

log = logging.getLogger("nicpool.owners")

FINISHED = ("Succeeded", "Failed")


def runs(pod: Mapping[str, Any] | None, uid: str) -> bool:
    """Is this pod (by UID) still there and not finished? A migration's source ends
    Succeeded: its holding ends with it."""
    if pod is None or pod_uid(pod) != uid:
        return False
    return (pod.get("status") or {}).get("phase") not in FINISHED


def changed(rt: Runtime, owner: OwnerRef) -> None:
    """An owner's holders or addresses changed: its claim's status follows."""
    if owner.kind == IPAMCLAIM and rt.leading:
        rt.queue.add(("claim", f"{owner.namespace}/{owner.name}"))


def leave(rt: Runtime, att: Attachment) -> bool:
    """``att``'s pod is gone: it stops holding its owner's addresses; they go too
    when the owner has ended. True when ``att`` left (the store agreed)."""
    assert att.owner is not None
    left = rt.ipam.leave(att.ref, fence=rt.fence, uid=att.uid)
    if left is None:
        current = rt.ipam.get(att.ref)
        if current is not None:
            rt.index.put(current)  # a successor of this name holds it now
            return False
    rt.index.drop(att.ref)
    if left is not None:
        log.info("%s: no longer holds %s of %s", att.ref, att.ip_csv(), att.owner)
    changed(rt, att.owner)
    settle_owner(rt, att.owner)
    return True


def settle_owner(rt: Runtime, owner: OwnerRef) -> bool:
    """Free ``owner``'s addresses if it ended and no holder runs; True when freed."""
    record = rt.ipam.owner(owner)
    if record is None:
        return False
    if owner_lives(rt, owner, record.uid):
        return False
    running = [h for h in record.holders if _holder_runs(rt, h)]
    if not releasable(False, len(running)):
        log.info("%s ended; kept while %s still runs", owner, running[0].ref.pod)
        return False
    released = rt.ipam.release_owner(owner, fence=rt.fence, uid=record.uid or None)
    if released is None:
        return False
    for holder in released.holders:
        rt.index.drop(holder.ref)
    name = owner_ip_name(owner, released.provider)
    forget_ip_object(rt.ip_written, name)
    delete_ip_object(rt.kube, name)
    log.info("%s ended: released %s", owner, released.ip_csv())
    rt.retry_refused()  # a pod refused for want of an address may fit now
    return True


def owner_lives(rt: Runtime, owner: OwnerRef, recorded_uid: str) -> bool:
    """Asks the apiserver (a missing KubeVirt CRD reads as no object)."""
    ns, name = owner.namespace, owner.name
    if owner.kind == IPAMCLAIM:
        return owner_alive(
            owner, recorded_uid, claim=object_state(rt.kube.get(IPAMCLAIMS, ns, name))
        )
    return owner_alive(
        owner,
        recorded_uid,
        vm=object_state(rt.kube.get(VIRTUALMACHINES, ns, name)),
        vmi=object_state(rt.kube.get(VIRTUALMACHINEINSTANCES, ns, name)),
    )


def _holder_runs(rt: Runtime, holder: Holder) -> bool:
    pod = rt.kube.get(PODS, holder.ref.pod.namespace, holder.ref.pod.name)
    return runs(pod, holder.uid)


def sharing_refusals(rt: Runtime, view: PodView, nics: tuple[NicPlan, ...]) -> list[ClaimRefusal]:
    """A claim already held by a running pod may be joined only by that pod's migration
    peer (the same VirtualMachineInstance); otherwise refused, nothing allocated."""
    errors: list[ClaimRefusal] = []
    for nic in nics:
        if nic.claim is None or nic.owner is None:
            continue
        for att in rt.index.all():
            if att.owner != nic.owner or att.uid == view.uid:
                continue
            other = rt.informer(PODS).get(str(att.ref.pod))
            if runs(other, att.uid) and not _migration_peers(view, other):
                errors.append(
                    IPAMClaimInUse(
                        f"IPAMClaim {nic.claim} is held by running pod {att.ref.pod}; a second "
                        "pod may share it only as a live migration of the same VM instance",
                        claim=nic.claim,
                    )
                )
                break
    return errors


def _migration_peers(view: PodView, other: Mapping[str, Any] | None) -> bool:
    if other is None or view.vm is None:
        return False
    peer = virt_launcher_vm(meta(other).get("ownerReferences"))
    return peer is not None and peer.vmi_uid == view.vm.vmi_uid and bool(peer.vmi_uid)


def cached_owner_lives(rt: Runtime, record: OwnerRecord) -> bool:
    """The GC's first look, from the caches: the owner's object, or a running holder."""
    owner = record.owner
    key = f"{owner.namespace}/{owner.name}"
    if owner.kind == IPAMCLAIM:
        alive = owner_alive(owner, record.uid, claim=object_state(rt.informer(IPAMCLAIMS).get(key)))
    else:
        alive = owner_alive(
            owner, record.uid, vm=object_state(rt.informer(VIRTUALMACHINES).get(key))
        )
    pods = rt.informer(PODS)
    return alive or any(runs(pods.get(str(h.ref.pod)), h.uid) for h in record.holders)
