"""Vip reservations in etcd: reserve, borrow, give back (the rules: ``store.core.vips``).

The reservation itself goes through ``Ipam`` like any NIC (group commit,
fencing, refusals confirmed against etcd); borrowing and giving back are
small transactions of their own that never touch a bitmap, so they need no
subnet lock.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from store.core.holders import require_proof
from store.core.identity import AttachmentRef, PodUID, Revision, SubnetName
from store.core.ops import Get, KeyValue
from store.core.records import Attachment, decode_attachment
from store.core.requests import AllocationRequest, Fencing
from store.core.vips import bind_txn, borrowing, rebound, reservation_request, vip_ref
from store.errors import (
    PermanentError,
    VipInUse,
    VipNotReserved,
    VipSubnetMismatch,
)
from store.guard import guarded_txn
from store.leases import Ipam, Result
from store.retry import retrying


class VipReservations:
    def __init__(self, ipam: Ipam, *, clock: Callable[[], float] = time.time) -> None:
        self.ipam = ipam
        self.keys = ipam.keys
        self.client = ipam.client
        self.clock = clock

    # -- the Vip's side ----------------------------------------------------

    def reservation(self, name: str) -> Attachment | None:
        return self.ipam.get(vip_ref(name))

    def reserve(
        self,
        name: str,
        uid: str,
        subnet: SubnetName,
        *,
        fixed_ips: tuple[str, ...],
        mac: str | None,
        fence: Fencing,
    ) -> Result:
        """The Vip's reservation (created once; the same one returned after that)."""
        request = reservation_request(name, uid, subnet, fixed_ips=fixed_ips, mac=mac)
        return self.ipam.allocate([request], fence=fence)[0]

    def borrower(self, reservation: Attachment) -> AttachmentRef | None:
        """The pod NIC borrowing the Vip's address, if any."""
        kv, _ = self.client.get(self._binding(reservation))
        return None if kv is None else self.keys.attachment_ref(kv.value.decode())

    def unreserve(self, name: str, uid: str | None, *, fence: Fencing) -> Attachment | None:
        """Free the Vip's address (of the Vip with ``uid``, when given); ``VipInUse`` while a
        pod NIC borrows it."""
        reservation = self.reservation(name)
        if reservation is None:
            return None
        binding = self._binding(reservation)
        released = self.ipam.release(
            vip_ref(name),
            fence=fence,
            uid=None if uid is None else PodUID(uid),
            unless_exists=[binding],
        )
        if released is None and self.reservation(name) is not None:
            raise VipInUse(f"Vip {name} is in use by {self.borrower(reservation) or 'a pod'}")
        return released

    def _binding(self, reservation: Attachment) -> str:
        return self.keys.vip_binding(reservation.subnet, reservation.ref.pod.name)

    # -- the pod's side ------------------------------------------------------

    def borrow(self, request: AllocationRequest, vip: str, *, fence: Fencing) -> Result:
        """The NIC of ``request`` borrowing Vip ``vip``'s address, or why not.

        Idempotent: the NIC's attachment of the same pod UID is returned as it
        is. A predecessor of the same pod name is replaced only with proof it
        is gone (``request.replaces``): when it borrowed the same Vip, the
        successor takes over the borrowing (StatefulSet retention); otherwise
        it is released first.
        """
        for attempt in retrying("allocate", subject=request.ref):
            with attempt:
                return self._borrow_once(request, vip, fence)
        raise AssertionError("unreachable: retrying re-raises")

    def _borrow_once(self, request: AllocationRequest, vip: str, fence: Fencing) -> Result:
        reservation_kv, nic_kv = self._read(
            self.keys.attachment(vip_ref(vip)), self.keys.attachment(request.ref)
        )
        if reservation_kv is None:
            return VipNotReserved(f"Vip {vip} has no address reserved yet")
        reservation = decode_attachment(reservation_kv.value)
        if reservation.subnet != request.subnet:
            return VipSubnetMismatch(
                f"Vip {vip} reserves an address of Subnet {reservation.subnet}, but "
                f"{request.ref} uses Subnet {request.subnet}"
            )
        nic_revision = Revision(0)
        if nic_kv is not None:
            current = decode_attachment(nic_kv.value)
            if current.uid == request.uid:
                return current
            try:
                require_proof(request, current)
            except PermanentError as exc:
                return exc
            if current.vip != vip:
                self.ipam.release(request.ref, fence=fence, uid=current.uid)
                return self._borrow_once(request, vip, fence)
            nic = rebound(current, request, fence=fence)
            nic_revision = nic_kv.mod_revision
        else:
            nic = borrowing(request, vip, reservation, fence=fence, now=self.clock())
        binding_kv = self._read(self._binding(reservation))[0]
        binding_revision = Revision(0)
        if binding_kv is not None:
            if binding_kv.value.decode() != self.keys.attachment(request.ref):
                holder = self.keys.attachment_ref(binding_kv.value.decode())
                return VipInUse(f"Vip {vip} is already used by {_holder(holder, request.ref)}")
            binding_revision = binding_kv.mod_revision
        compares, ops = bind_txn(
            self.keys,
            nic,
            reservation_kv.mod_revision,
            binding_revision=binding_revision,
            nic_revision=nic_revision,
        )
        guarded_txn(self.client, compares, ops, fence)
        return nic

    def _read(self, *keys: str) -> list[KeyValue | None]:
        return list(self.client.txn([], [Get(key) for key in keys]).gets)


def _holder(holder: AttachmentRef, asking: AttachmentRef) -> str:
    """Named only to a pod of the same namespace (DESIGN.md, trust boundaries)."""
    if holder.pod.namespace == asking.pod.namespace:
        return f"pod {holder.pod} ({holder.qualified})"
    return "another pod"
