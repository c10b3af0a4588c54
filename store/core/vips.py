"""Kube-OVN ``Vip`` reservations: an address a Vip owns and one pod NIC at a time borrows.

How a Vip's address is held, decided once:

* **The Vip owns it for its whole life.** Its reservation is an ordinary
  attachment (lease record, bitmap bit, MAC index entry) whose owner is
  :func:`vip_ref` (``attachments/_vip/<vip>/vip``; ``_vip`` is not a valid
  namespace name, so no pod can ever be that owner), allocated like any NIC
  (``spec.v4ip``/``v6ip`` as fixed addresses, else the next free one). It is
  never handed out otherwise: the bit stays set while the Vip exists.
* **A pod NIC borrows it.** The NIC's own attachment carries the Vip's
  addresses and MAC and ``vip=<name>`` (so the node agent answers it in one
  read as any other NIC), and a *binding* key
  ``subnets/<subnet>/vips/<vip>`` names the borrowing attachment. Both are
  created in one transaction that compares the binding absent and the
  reservation unchanged: a Vip is never borrowed twice (``VipInUse``).
* **Giving it back frees nothing.** Releasing a borrowing NIC (pod deleted,
  GC, a successor replacing it) deletes only the NIC's attachment and the
  binding (``store.core.plan.release_ops``); the lease, bit and MAC index
  stay the Vip's. Deleting the Vip frees its reservation only while no
  binding exists (the release compares the binding absent).

This is Kube-OVN's behaviour (the Vip keeps its address; a pod annotated
with it uses it; one pod at a time, marked on the Vip) without its gap:
Kube-OVN releases the Vip's address from IPAM while a pod uses it and takes
it back when the pod goes, so another allocation can slip in between.
"""

from __future__ import annotations

from dataclasses import replace

from store.core.identity import (
    AttachmentRef,
    Mac,
    PodRef,
    PodUID,
    Provider,
    Revision,
    SubnetName,
)
from store.core.keys import Keys
from store.core.ops import Compare, CreateRevisionIs, Delete, ModRevisionIs, Op, Put
from store.core.records import Attachment, encode_attachment
from store.core.requests import AllocationRequest, Fence, Fencing

VIP_NAMESPACE = "_vip"
"""The owner namespace of every Vip reservation (not a valid Kubernetes namespace)."""
VIP_PROVIDER = Provider("vip")
ABSENT = Revision(0)
"""The revision a compare expects of a key that must not exist."""


def vip_ref(name: str) -> AttachmentRef:
    """The owner of Vip ``name``'s reservation."""
    return AttachmentRef(PodRef(VIP_NAMESPACE, name), VIP_PROVIDER)


def is_vip_ref(ref: AttachmentRef) -> bool:
    return ref.pod.namespace == VIP_NAMESPACE


def reservation_request(
    name: str,
    uid: str,
    subnet: SubnetName,
    *,
    fixed_ips: tuple[str, ...] = (),
    mac: str | None = None,
) -> AllocationRequest:
    """What ``Ipam.allocate`` is asked for a Vip: its given addresses, else the next free."""
    return AllocationRequest(
        ref=vip_ref(name),
        uid=PodUID(uid),
        subnet=subnet,
        interface="",
        fixed_ips=fixed_ips,
        mac=None if mac is None else Mac(mac),
    )


def borrowing(
    request: AllocationRequest, vip: str, reservation: Attachment, *, fence: Fencing, now: float
) -> Attachment:
    """The pod NIC's attachment that borrows ``reservation``'s addresses and MAC."""
    return Attachment(
        ref=request.ref,
        uid=request.uid,
        subnet=reservation.subnet,
        interface=request.interface,
        ips=reservation.ips,
        mac=reservation.mac,
        routes=request.routes,
        default_route=request.default_route,
        workload=request.workload,
        mtu=reservation.mtu,
        created=now,
        fence=fence.revision if isinstance(fence, Fence) else Revision(0),
        vip=vip,
    )


def bind_txn(
    keys: Keys,
    nic: Attachment,
    reservation_revision: Revision,
    *,
    binding_revision: Revision = ABSENT,
    nic_revision: Revision = ABSENT,
) -> tuple[list[Compare], list[Op]]:
    """Write ``nic`` and its binding if the reservation, the binding and the NIC's key
    are as read (revision 0: absent)."""
    assert nic.vip is not None
    nic_key = keys.attachment(nic.ref)
    binding = keys.vip_binding(nic.subnet, nic.vip)
    compares: list[Compare] = [
        ModRevisionIs(keys.attachment(vip_ref(nic.vip)), reservation_revision),
        _is(binding, binding_revision),
        _is(nic_key, nic_revision),
    ]
    return compares, [Put(nic_key, encode_attachment(nic)), Put(binding, nic_key.encode())]


def _is(key: str, revision: Revision) -> Compare:
    return CreateRevisionIs(key, ABSENT) if revision == ABSENT else ModRevisionIs(key, revision)


def returned_ops(keys: Keys, nic: Attachment) -> list[Op]:
    """A borrowing NIC gives the address back: only its attachment and its binding go."""
    assert nic.vip is not None
    return [Delete(keys.attachment(nic.ref)), Delete(keys.vip_binding(nic.subnet, nic.vip))]


def rebound(predecessor: Attachment, request: AllocationRequest, *, fence: Fencing) -> Attachment:
    """A successor of the same pod name (StatefulSet) keeps borrowing the same Vip."""
    return replace(
        predecessor,
        uid=request.uid,
        interface=request.interface,
        routes=request.routes,
        default_route=request.default_route,
        workload=request.workload,
        fence=fence.revision if isinstance(fence, Fence) else Revision(0),
    )
