"""Vip objects: reserve the address, report it, free it once nobody borrows it (leader only).

A Vip (``kubeovn.io/v1``) reserves one address per family of its Subnet in
the store (``store.vips``; how it is held: ``store.core.vips``) and shows
it in ``status.v4ip``/``v6ip``/``mac`` as Kube-OVN does, plus
``status.pod``, the pod borrowing it (nicpool's; Kube-OVN marks that in a
label). What it reserved never changes afterwards: a later edit of
``spec.v4ip``/``v6ip``/``macAddress`` is reported (Event
``VipSpecChanged``) and ignored, as Kube-OVN ignores it.

A Vip nicpool cannot serve (unreadable spec, its Subnet missing, its
address held by a pod) gets ``Ready=False`` and a Warning Event, and
reserves nothing. A deleted Vip keeps its finalizer while a pod borrows
it (``VipInUse``), and goes with that pod's release.
"""

from __future__ import annotations

import logging
from typing import Any

from reconciler.core.conditions import Verdict, merged
from reconciler.core.errors import InvalidVip
from reconciler.core.vips import VipView, vip_from_object
from reconciler.events import Involved
from reconciler.finalizers import drop_finalizer, ensure_finalizer
from reconciler.kube.resources import VIPS
from reconciler.objects import meta
from reconciler.podflow import retry_refused
from reconciler.runtime import Runtime
from reconciler.statuses import now
from store.core.identity import SubnetName
from store.core.records import Attachment
from store.errors import PermanentError, VipInUse

log = logging.getLogger("nicpool.vips")


def involved(obj: dict[str, Any]) -> Involved:
    m = meta(obj)
    return Involved("Vip", "kubeovn.io/v1", "", str(m.get("name")), str(m.get("uid")))


def refresh_view(rt: Runtime, name: str, obj: dict[str, Any] | None) -> None:
    """Keep the planning view current (every replica, on every Vip event)."""
    if obj is None:
        rt.views.set_vip(name, None)
        return
    try:
        rt.views.set_vip(name, vip_from_object(obj))
    except InvalidVip as exc:
        rt.views.set_vip(name, None, error=exc)


def sync_vip(rt: Runtime, name: str) -> bool:
    obj = rt.informer(VIPS).get(name)
    if obj is None:
        _free(rt, name, None)  # deleted before it carried our finalizer
        return True
    if meta(obj).get("deletionTimestamp"):
        return _finalize(rt, name, obj)
    ensure_finalizer(rt.kube, VIPS, obj)
    try:
        view = vip_from_object(obj)
        reservation = _reserve(rt, view)
    except PermanentError as exc:
        rt.recorder.warn(involved(obj), exc.reason, str(exc))
        _status(rt, obj, None, Verdict.refused(exc.reason, str(exc)))
        return False  # retried with backoff: the Subnet may come, the address be freed
    if view.fixed_ips and tuple(i.ip for i in reservation.ips) != view.fixed_ips:
        rt.recorder.warn(
            involved(obj),
            "VipSpecChanged",
            f"the Vip keeps its reserved {reservation.ip_csv()}; spec asks for "
            f"{','.join(view.fixed_ips)} (delete and recreate the Vip to change it)",
        )
    _status(rt, obj, reservation, Verdict.ok("VipReserved", f"reserves {reservation.ip_csv()}"))
    return True


def _reserve(rt: Runtime, view: VipView) -> Attachment:
    existing = rt.vips.reservation(view.name)
    if existing is not None and existing.uid == view.uid:
        return existing
    if existing is not None:
        _free(rt, view.name, existing.uid)  # a Vip of the same name from before
    # What the status shows wins over a later spec edit, and restores a reservation
    # lost with etcd (nicpoolctl rebuild) at the very address pods were told.
    result = rt.vips.reserve(
        view.name,
        view.uid,
        SubnetName(view.subnet),
        fixed_ips=view.reserved or view.fixed_ips,
        mac=view.reserved_mac or view.mac,
        fence=rt.fence,
    )
    if isinstance(result, PermanentError):
        raise result
    return result


def _finalize(rt: Runtime, name: str, obj: dict[str, Any]) -> bool:
    try:
        _free(rt, name, str(meta(obj).get("uid")))
    except VipInUse as exc:
        rt.recorder.warn(involved(obj), exc.reason, f"deletion waits until it is released: {exc}")
        reservation = rt.vips.reservation(name)
        _status(rt, obj, reservation, Verdict.waiting(exc.reason, str(exc)))
        return True
    drop_finalizer(rt.kube, VIPS, obj)
    return True


def _free(rt: Runtime, name: str, uid: str | None) -> None:
    released = rt.vips.unreserve(name, uid, fence=rt.fence)
    if released is not None:
        log.info("Vip %s: released %s", name, released.ip_csv())
        retry_refused(rt)


def _status(
    rt: Runtime, obj: dict[str, Any], reservation: Attachment | None, verdict: Verdict
) -> None:
    current = obj.get("status") or {}
    by_family = {} if reservation is None else {i.family: i.ip for i in reservation.ips}
    borrower = None if reservation is None else rt.vips.borrower(reservation)
    generation = meta(obj).get("generation")
    status = {
        "v4ip": by_family.get(4, ""),
        "v6ip": by_family.get(6, ""),
        "mac": "" if reservation is None else reservation.mac,
        "type": str((obj.get("spec") or {}).get("type") or ""),
        "pod": "" if borrower is None else str(borrower.pod),
        "conditions": merged(
            current.get("conditions"),
            verdict,
            generation=generation if isinstance(generation, int) else 0,
            now=now(),
        ),
    }
    if all(current.get(k) == v for k, v in status.items()):
        return
    rt.kube.merge_patch(VIPS, None, name_of(obj), {"status": status}, status=True)


def name_of(obj: dict[str, Any]) -> str:
    return str(meta(obj).get("name"))
