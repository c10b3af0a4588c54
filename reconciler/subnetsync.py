"""Subnet objects -> the store's subnet specs, and usage -> Subnet status and metrics.

Every replica keeps a parsed view of each Subnet for planning (so a
standby is warm); only the leader registers specs in etcd (fenced) and
writes ``status`` like Kube-OVN's (``v4availableIPs``, ``v4usingIPs``,
``v6...``). A Subnet nicpool cannot use gets an Event on the Subnet.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from reconciler import metrics
from reconciler.core.errors import InvalidSubnet
from reconciler.core.subnets import store_spec_of, subnet_from_object
from reconciler.events import Involved
from reconciler.kube.resources import SUBNETS
from reconciler.objects import meta
from reconciler.runtime import Runtime
from store.core.identity import SubnetName
from store.errors import PermanentError, UnknownSubnet
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
            view = subnet_from_object(name, obj.get("spec") or {})
        except InvalidSubnet:
            view = None  # the leader reports why on the Subnet (sync_subnet)
    rt.views.set_subnet(SubnetName(name), view)


def sync_subnet(rt: Runtime, name: str, *, status: bool = True) -> bool:
    """Register (or remove) one Subnet in etcd. Leader only."""
    obj = rt.informer(SUBNETS).get(name)
    if obj is None:
        try:
            rt.subnets.delete(SubnetName(name), fence=rt.fence)
            _forget_metrics(name)
        except SubnetInUse as exc:
            log.warning(
                "Subnet %s deleted while in use; its leases stay until released: %s", name, exc
            )
        return True
    spec = obj.get("spec") or {}
    try:
        parsed = store_spec_of(name, spec)
        if rt.subnets.get(parsed.name) == parsed:
            if status:
                update_status(rt, name)
            return True  # registered as is: skip put, which reads every lease
        stranded = rt.subnets.put(parsed, fence=rt.fence, origin=_origin(obj))
    except StaleSpec as exc:
        log.info("Subnet %s: %s", name, exc)
        return True
    except PermanentError as exc:
        log.warning("Subnet %s refused (%s): %s", name, exc.reason, exc)
        rt.recorder.warn(involved(obj), exc.reason, str(exc))
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
        update_status(rt, name)
    return True


def _origin(obj: dict[str, Any]) -> SpecOrigin:
    m = meta(obj)
    generation = m.get("generation")
    return SpecOrigin(
        uid=str(m.get("uid", "")), generation=generation if isinstance(generation, int) else 0
    )


def _forget_metrics(name: str) -> None:
    for family in ("4", "6"):
        for state in ("total", "used", "available", "excluded"):
            with contextlib.suppress(KeyError):
                metrics.SUBNET_ADDRESSES.remove(name, family, state)


def update_status(rt: Runtime, name: str) -> None:
    """Usage from the bitmaps -> metrics and the Subnet's status (only when it changed)."""
    try:
        usage = rt.ipam.usage(SubnetName(name))
    except UnknownSubnet:
        return
    if not rt.leading:
        return  # deposed while reading: the new leader exports (see Controller._step_down)
    status: dict[str, float] = {}
    for family in usage:
        fam = str(family.family)
        for state in ("total", "used", "available", "excluded"):
            metrics.SUBNET_ADDRESSES.labels(name, fam, state).set(getattr(family, state))
        status[f"v{fam}availableIPs"] = family.available
        status[f"v{fam}usingIPs"] = family.used
    obj = rt.informer(SUBNETS).get(name)
    if obj is None:
        return
    current = obj.get("status") or {}
    if all(current.get(k) == v for k, v in status.items()):
        return
    rt.kube.merge_patch(SUBNETS, None, name, {"status": status}, status=True)
