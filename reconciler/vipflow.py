"""Allocating a pod's NICs: most through ``Ipam``, those naming a Vip by borrowing it.

Planning marks a NIC that takes a Vip's address (``NicPlan.vip``); such a
NIC is not allocated but borrows the Vip's reservation
(``store.vips.VipReservations.borrow``). Results come back in request
order, of the same kinds (an attachment or the refusal), so the pod
workflow treats both alike: rollback, proof of a predecessor's absence,
Events.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from reconciler.runtime import Runtime
from store.core.identity import AttachmentRef
from store.core.records import Attachment
from store.core.requests import AllocationRequest
from store.leases import Result


def allocate(
    rt: Runtime, requests: Sequence[AllocationRequest], vips: Mapping[AttachmentRef, str]
) -> list[Result]:
    plain = [r for r in requests if r.ref not in vips]
    results: dict[AttachmentRef, Result] = {}
    if plain:
        results.update(
            zip((r.ref for r in plain), rt.ipam.allocate(plain, fence=rt.fence), strict=True)
        )
    for request in requests:
        vip = vips.get(request.ref)
        if vip is None:
            continue
        results[request.ref] = rt.vips.borrow(request, vip, fence=rt.fence)
        if isinstance(results[request.ref], Attachment):
            rt.queue.add(("vip", vip))  # its status names the pod now
    return [results[r.ref] for r in requests]
