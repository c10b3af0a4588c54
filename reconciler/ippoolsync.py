"""IPPool objects: finalizer, refusal, deletion, status (leader only).

Whether an IPPool is usable is decided on every replica alike
(``views``/``core.overlaps``: its Subnet exists and is usable, every entry
lies inside it, no address is shared with an older IPPool of that Subnet).
The leader reports it: a refused IPPool gets ``Ready=False`` and a Warning
Event with the reason (``IPPoolOverlap``, ``IPPoolOutsideSubnet``,
``IPPoolSubnetNotFound``, ``InvalidIPPoolObject``), and no pod is given an
address from it. Its Subnet is registered again whenever the set of pools
changes, so the next-free search skips exactly the usable pools' addresses.

A deleted IPPool keeps its finalizer while any of its addresses is leased
(``IPPoolInUse``: condition and Event), and goes with the last release.
"""

from __future__ import annotations

from typing import Any

from reconciler.events import Involved
from reconciler.finalizers import drop_finalizer, ensure_finalizer
from reconciler.kube.resources import IPPOOLS
from reconciler.objects import meta
from reconciler.runtime import Runtime
from reconciler.statuses import forget_pool_metrics, occupancy_of, write_pool_status


def involved(obj: dict[str, Any]) -> Involved:
    m = meta(obj)
    return Involved("IPPool", "kubeovn.io/v1", "", str(m.get("name")), str(m.get("uid")))


def sync_ippool(rt: Runtime, name: str) -> bool:
    obj = rt.informer(IPPOOLS).get(name)
    if obj is None:
        forget_pool_metrics(name)
        return True
    deleting = bool(meta(obj).get("deletionTimestamp"))
    if not deleting:
        ensure_finalizer(rt.kube, IPPOOLS, obj)  # first: the status patch moves resourceVersion
    subnet = str((obj.get("spec") or {}).get("subnet", ""))
    occupancy = occupancy_of(rt, subnet) if subnet else None
    used = write_pool_status(rt, obj, occupancy)
    if deleting:
        if used:
            rt.recorder.warn(
                involved(obj),
                "IPPoolInUse",
                f"deletion waits until its {used} leased addresses are released",
            )
            return True
        forget_pool_metrics(name)
        drop_finalizer(rt.kube, IPPOOLS, obj)
        return True
    refused = rt.views.world.refused_pools.get(name)
    if refused is not None:
        rt.recorder.warn(involved(obj), refused.reason, str(refused))
    return True
