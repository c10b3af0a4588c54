"""Subnet objects -> the store's subnet specs: registration, refusal, deletion.

Every replica keeps a parsed view of each Subnet for planning (so a standby
is warm). Only the leader registers specs in etcd (fenced), with the
addresses of the Subnet's IPPools as its ``pooled`` ranges (the next-free
search skips them). A Subnet nicpool cannot use (unreadable, or
overlapping an older Subnet of its network: ``core.overlaps``) is not
registered; a condition and a Warning Event on the Subnet say why.

Deletion (``finalizers``): the Subnet carries Kube-OVN's finalizer; once
deleted it is removed from the store and released only when it holds no
lease; until then a condition (``SubnetInUse``) and an Event say so, no new
NIC is planned on it, and every release looks at it again.
"""

from __future__ import annotations

import logging
from typing import Any

from reconciler.core.errors import InvalidSubnet
from reconciler.core.ippools import pool_offsets
from reconciler.core.subnets import store_spec_of, subnet_from_object
from reconciler.events import Involved
from reconciler.finalizers import drop_finalizer, ensure_finalizer
from reconciler.kube.resources import SUBNETS
from reconciler.objects import meta
from reconciler.runtime import Runtime
from reconciler.statuses import forget_subnet_metrics, refresh, write_subnet_status
from store.core.identity import SubnetName
from store.errors import PermanentError
from store.subnets import SpecOrigin, StaleSpec, SubnetInUse

log = logging.getLogger("nicpool.subnets")


def involved(obj: dict[str, Any]) -> Involved:
    m = meta(obj)
    return Involved("Subnet", "kubeovn.io/v1", "", str(m.get("name")), str(m.get("uid")))


def refresh_view(rt: Runtime, name: str, obj: dict[str, Any] | None) -> None:
    """Keep the planning view current (every replica, on every Subnet event)."""
    view = None
    if obj is not None:
        try:
            view = subnet_from_object(name, obj.get("spec") or {}, meta(obj), obj.get("status"))
        except InvalidSubnet:
            view = None  # the leader reports why on the Subnet (sync_subnet)
    rt.views.set_subnet(SubnetName(name), view)


def sync_subnet(rt: Runtime, name: str, *, status: bool = True) -> bool:
    """Register, refuse or remove one Subnet in etcd. Leader only."""
    obj = rt.informer(SUBNETS).get(name)
    if obj is None:
        try:
            rt.subnets.delete(SubnetName(name), fence=rt.fence)
            forget_subnet_metrics(name)
        except SubnetInUse as exc:
            log.warning(
                "Subnet %s deleted while in use; its leases stay until released: %s", name, exc
            )
        return True
    if meta(obj).get("deletionTimestamp"):
        return _finalize(rt, name, obj)
    ensure_finalizer(rt.kube, SUBNETS, obj)
    refused = rt.views.refused_subnets.get(SubnetName(name))
    if refused is not None:
        _refuse(rt, obj, refused)
        return True
    try:
        parsed = store_spec_of(name, obj.get("spec") or {}).with_pooled(_pooled(rt, name))
        if rt.subnets.get(parsed.name) == parsed:
            if status:
                refresh(rt, name)
            return True  # registered as is: skip put, which reads every lease
        stranded = rt.subnets.put(parsed, fence=rt.fence, origin=_origin(obj))
    except StaleSpec as exc:
        log.info("Subnet %s: %s", name, exc)
        return True
    except PermanentError as exc:
        _refuse(rt, obj, exc)
        return True
    if stranded:
        ips = ", ".join(sorted(lease.ip for lease in stranded)[:10])
        rt.recorder.warn(
            involved(obj),
            "LeasesInExcludedRange",
            f"{len(stranded)} leased addresses are now excluded or reserved and kept until "
            f"their pods go: {ips}",
        )
    if status:
        refresh(rt, name)
    _wake_dependents(rt, name)
    return True


def _wake_dependents(rt: Runtime, name: str) -> None:
    """The Subnet is registered (anew): its Vips can reserve, its IPPools count."""
    world = rt.views.world
    for vip in world.vips.values():
        if vip.subnet == name:
            rt.queue.add(("vip", vip.name))
    for pool in world.ippools.values():
        if pool.subnet == name:
            rt.queue.add(("ippool", pool.name))


def _refuse(rt: Runtime, obj: dict[str, Any], error: PermanentError) -> None:
    name = str(meta(obj).get("name"))
    log.warning("Subnet %s refused (%s): %s", name, error.reason, error)
    rt.recorder.warn(involved(obj), error.reason, str(error))
    write_subnet_status(rt, obj, None)


def _finalize(rt: Runtime, name: str, obj: dict[str, Any]) -> bool:
    """A deleted Subnet leaves the store, and lets go of its finalizer, once it holds no lease."""
    try:
        rt.subnets.delete(SubnetName(name), fence=rt.fence)
    except SubnetInUse as exc:
        rt.recorder.warn(
            involved(obj), "SubnetInUse", f"deletion waits until its leases are released: {exc}"
        )
        refresh(rt, name)
        return True
    forget_subnet_metrics(name)
    drop_finalizer(rt.kube, SUBNETS, obj)
    return True


def _pooled(rt: Runtime, name: str) -> list[str]:
    """The addresses of the Subnet's usable IPPools (being deleted included), as ``a..b``."""
    world = rt.views.world
    view = world.subnets.get(SubnetName(name))
    if view is None:
        return []
    entries = []
    for pool in world.ippools.values():
        if pool.subnet != name or pool.name in world.refused_pools:
            continue
        for layout in view.layouts:
            for first, last in pool_offsets(pool, layout).pairs:
                entries.append(f"{layout.address_at(first)}..{layout.address_at(last)}")
    return sorted(entries)


def _origin(obj: dict[str, Any]) -> SpecOrigin:
    m = meta(obj)
    generation = m.get("generation")
    return SpecOrigin(
        uid=str(m.get("uid", "")), generation=generation if isinstance(generation, int) else 0
    )
