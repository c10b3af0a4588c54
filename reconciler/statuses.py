"""Subnet and IPPool status: counts, Kube-OVN's range strings, conditions; and the pool metrics.

The leader refreshes every Subnet every ``status_interval`` (and after each
change): one read of the Subnet's bitmaps (``Ipam.occupancy``) gives its
own status and that of each IPPool of the Subnet, and the metrics
``nicpool_subnet_addresses`` and ``nicpool_ippool_addresses``. A status is
patched only when it differs from what the object already shows, so a
quiet cluster costs no apiserver write.

Conditions (``core.conditions``) say whether the object is usable: a
Subnet refused for overlapping an older one, an IPPool refused for
overlapping another or reaching outside its Subnet, one whose deletion
waits for its leases.
"""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import Mapping, Sequence
from typing import Any

from reconciler import metrics
from reconciler.core.conditions import Verdict, merged
from reconciler.core.errors import InvalidSubnet
from reconciler.core.ippools import IPPoolView
from reconciler.core.poolusage import pool_status, pool_usage, subnet_status
from reconciler.core.subnets import subnet_from_object
from reconciler.kube.resources import IPPOOLS, SUBNETS, Resource
from reconciler.objects import meta
from reconciler.runtime import Runtime
from store.core.identity import SubnetName
from store.core.usage import FamilyOccupancy
from store.errors import UnknownSubnet

STATES = ("total", "used", "available", "excluded")
_pool_series: dict[str, set[tuple[str, str, str, str]]] = {}
"""The label sets exported per IPPool, to remove them when it goes or moves."""


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def occupancy_of(rt: Runtime, subnet: str) -> list[FamilyOccupancy] | None:
    """The Subnet's occupancy from etcd, or None when it is not registered."""
    try:
        return rt.ipam.occupancy(SubnetName(subnet))
    except UnknownSubnet:
        return None


def refresh(rt: Runtime, name: str) -> None:
    """Status and metrics of Subnet ``name`` and of its IPPools, from one bitmap read."""
    occupancy = occupancy_of(rt, name)
    if not rt.leading:
        return  # deposed while reading: the new leader exports (see Controller._step_down)
    if occupancy is not None:
        for family in occupancy:
            for state in STATES:
                value = getattr(family.usage, state)
                metrics.SUBNET_ADDRESSES.labels(name, str(family.layout.family), state).set(value)
    obj = rt.informer(SUBNETS).get(name)
    if obj is not None:
        write_subnet_status(rt, obj, occupancy)
    for pool in rt.informer(IPPOOLS).items():
        if (pool.get("spec") or {}).get("subnet") == name:
            write_pool_status(rt, pool, occupancy)


def subnet_verdict(
    rt: Runtime, obj: Mapping[str, Any], occupancy: Sequence[FamilyOccupancy] | None
) -> Verdict | None:
    name = SubnetName(str(meta(obj).get("name")))
    try:
        subnet_from_object(name, obj.get("spec") or {})
    except InvalidSubnet as exc:
        return Verdict.refused(exc.reason, str(exc))
    refused = rt.views.refused_subnets.get(name)
    if refused is not None:
        return Verdict.refused(refused.reason, str(refused))
    if occupancy is None:
        return None  # not registered yet: sync_subnet says why when it can
    used = sum(family.usage.used for family in occupancy)
    if meta(obj).get("deletionTimestamp"):
        return Verdict.waiting("SubnetInUse", f"deletion waits for {used} leases to be released")
    return Verdict.ok("SubnetReady", "registered in the store")


def write_subnet_status(
    rt: Runtime, obj: Mapping[str, Any], occupancy: Sequence[FamilyOccupancy] | None
) -> None:
    status: dict[str, Any] = subnet_status(occupancy) if occupancy is not None else {}
    _write(rt, SUBNETS, obj, status, subnet_verdict(rt, obj, occupancy))


def pool_verdict(
    rt: Runtime, obj: Mapping[str, Any], view: IPPoolView | None, used: int
) -> Verdict:
    name = str(meta(obj).get("name"))
    refused = rt.views.world.refused_pools.get(name)
    if refused is not None or view is None:
        reason = refused.reason if refused is not None else "InvalidIPPoolObject"
        return Verdict.refused(reason, str(refused or "unreadable"))
    if view.deleting:
        return Verdict.waiting("IPPoolInUse", f"deletion waits for {used} leases to be released")
    return Verdict.ok("IPPoolReady", f"serves Subnet {view.subnet}")


def write_pool_status(
    rt: Runtime, obj: Mapping[str, Any], occupancy: Sequence[FamilyOccupancy] | None
) -> int:
    """Write an IPPool's status (and metrics); returns how many of its addresses are leased."""
    name = str(meta(obj).get("name"))
    view = rt.views.world.ippools.get(name)
    status: dict[str, Any] = {}
    used = 0
    if view is not None and occupancy is not None:
        usage = pool_usage(view, occupancy)
        status = pool_status(usage)
        used = sum(u.used for u in usage)
        for u in usage:
            for state in ("total", "used", "available"):
                labels = (name, view.subnet, str(u.family), state)
                metrics.IPPOOL_ADDRESSES.labels(*labels).set(getattr(u, state))
                _pool_series.setdefault(name, set()).add(labels)
    _write(rt, IPPOOLS, obj, status, pool_verdict(rt, obj, view, used))
    return used


def forget_pool_metrics(name: str) -> None:
    for labels in _pool_series.pop(name, set()):
        with contextlib.suppress(KeyError):
            metrics.IPPOOL_ADDRESSES.remove(*labels)


def forget_subnet_metrics(name: str) -> None:
    for family in ("4", "6"):
        for state in STATES:
            with contextlib.suppress(KeyError):
                metrics.SUBNET_ADDRESSES.remove(name, family, state)


def _write(
    rt: Runtime,
    resource: Resource,
    obj: Mapping[str, Any],
    status: dict[str, Any],
    verdict: Verdict | None,
) -> None:
    current = obj.get("status") or {}
    if verdict is not None:
        generation = meta(obj).get("generation")
        status["conditions"] = merged(
            current.get("conditions"),
            verdict,
            generation=generation if isinstance(generation, int) else 0,
            now=now(),
        )
    if all(current.get(k) == v for k, v in status.items()):
        return
    name = str(meta(obj).get("name"))
    rt.kube.merge_patch(resource, None, name, {"status": status}, status=True)
