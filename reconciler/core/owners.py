"""When an owner that outlives its pods has ended (DESIGN.md, Owners), as pure predicates.

* An **IPAMClaim** lives while an object of that name and UID exists. One
  being deleted (KubeVirt holds it with a finalizer until the VM is gone)
  still lives; new pods may not start using it (:mod:`reconciler.core.claims`).
* A **VM's NIC** (Kube-OVN's keep-vm-ip) lives, as in Kube-OVN's
  ``isVMToDel``, while its VirtualMachineInstance exists and is not being
  deleted, or else while its VirtualMachine exists (the same UID when the
  lease recorded one) and is not being deleted. A VMI that a re-created VM
  of the same name owns does not keep the old VM's. So a stopped VM keeps its
  addresses; a VM deleted keeps them until its VMI is gone too; a VMI created
  without a VirtualMachine ("just a VMI") keeps them for the VMI's lifetime.

Either way the addresses are freed only when the owner has ended **and** no
pod holding them is still alive (:func:`releasable`): KubeVirt deletes a VM
before its virt-launcher pod stops, and an address freed then could be
handed to another pod while the VM still answers on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from store.core.identity import IPAMCLAIM, OwnerRef


@dataclass(frozen=True)
class ObjectState:
    """What liveness needs of a claim, VM or VMI object."""

    uid: str
    deleting: bool = False
    owner_uid: str = ""
    """A VMI's controller (its VirtualMachine's UID); empty for one without."""


def object_state(obj: Mapping[str, Any] | None) -> ObjectState | None:
    if obj is None:
        return None
    meta = obj.get("metadata") or {}
    controller = next(
        (
            r
            for r in meta.get("ownerReferences") or []
            if isinstance(r, Mapping) and r.get("controller")
        ),
        {},
    )
    return ObjectState(
        str(meta.get("uid", "")),
        bool(meta.get("deletionTimestamp")),
        str(controller.get("uid", "")),
    )


def claim_alive(recorded_uid: str, claim: ObjectState | None) -> bool:
    return claim is not None and (not recorded_uid or claim.uid == recorded_uid)


def vm_alive(recorded_uid: str, vm: ObjectState | None, vmi: ObjectState | None) -> bool:
    if (
        vmi is not None
        and not vmi.deleting
        and vmi.owner_uid in ("", recorded_uid or vmi.owner_uid)
    ):
        return True  # not the VMI of another VM of that name (deleted and re-created)
    same_vm = vm is not None and (not recorded_uid or vm.uid == recorded_uid)
    return same_vm and vm is not None and not vm.deleting


def owner_alive(
    owner: OwnerRef,
    recorded_uid: str,
    *,
    claim: ObjectState | None = None,
    vm: ObjectState | None = None,
    vmi: ObjectState | None = None,
) -> bool:
    """Has ``owner`` (recorded with ``recorded_uid``) not ended, given its objects?"""
    if owner.kind == IPAMCLAIM:
        return claim_alive(recorded_uid, claim)
    return vm_alive(recorded_uid, vm, vmi)


def releasable(owner_is_alive: bool, live_holders: int) -> bool:
    """The owner's addresses go back only when it ended and no holder pod runs."""
    return not owner_is_alive and live_holders == 0
