"""Finalizers: a Subnet, IPPool or Vip with live leases is not deleted out from under them.

The controller puts Kube-OVN's finalizer (``kubeovn.io/kube-ovn-controller``)
on every Subnet, IPPool and Vip it serves. Deleting one then only marks it
(``deletionTimestamp``): nothing new is allocated from it, pods keep what
they hold, a condition and an Event say what it waits for, and the
finalizer is removed once the last lease is released. The same name as
Kube-OVN's, so objects move between the two controllers without a stuck
finalizer (never run both in one cluster).

A change reads the object afresh and patches with the ``resourceVersion``
it read, so a finalizer list another controller changed meanwhile is never
overwritten (409: retried); the read is only made when the cache says a
change is due (an object's creation and deletion).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from reconciler.kube.client import KubeClient
from reconciler.kube.resources import IPPOOLS, SUBNETS, Resource
from reconciler.objects import meta
from reconciler.runtime import Runtime
from store.core.records import Attachment

FINALIZER = "kubeovn.io/kube-ovn-controller"
LEGACY = "kube-ovn-controller"
"""Kube-OVN's earlier name, removed along with ours."""


def finalizers_of(obj: Mapping[str, Any]) -> list[str]:
    found = meta(obj).get("finalizers") or []
    return [str(f) for f in found] if isinstance(found, list) else []


def ensure_finalizer(kube: KubeClient, resource: Resource, obj: Mapping[str, Any]) -> None:
    if FINALIZER not in finalizers_of(obj):
        _update(
            kube,
            resource,
            obj,
            lambda found: [*found, FINALIZER] if FINALIZER not in found else found,
        )


def drop_finalizer(kube: KubeClient, resource: Resource, obj: Mapping[str, Any]) -> None:
    if {FINALIZER, LEGACY} & set(finalizers_of(obj)):
        _update(
            kube, resource, obj, lambda found: [f for f in found if f not in (FINALIZER, LEGACY)]
        )


def _update(
    kube: KubeClient,
    resource: Resource,
    cached: Mapping[str, Any],
    change: Callable[[list[str]], list[str]],
) -> None:
    """Read the object afresh (the cache may trail our own status patch) and patch its
    finalizers with the resourceVersion just read."""
    name = str(meta(cached).get("name"))
    fresh = kube.get(resource, None, name)
    if fresh is None:
        return
    found = finalizers_of(fresh)
    wanted = change(found)
    if wanted != found:
        rv = meta(fresh).get("resourceVersion")
        kube.merge_patch(
            resource, None, name, {"metadata": {"finalizers": wanted, "resourceVersion": rv}}
        )


def after_release(rt: Runtime, att: Attachment) -> None:
    """A lease went: whatever waits to be deleted for want of it looks again."""
    if not rt.leading:
        return
    subnet = rt.informer(SUBNETS).get(att.subnet)
    if subnet is not None and meta(subnet).get("deletionTimestamp"):
        rt.queue.add(("subnet", att.subnet))
    for pool in rt.informer(IPPOOLS).items():
        spec = pool.get("spec") or {}
        if spec.get("subnet") == att.subnet and meta(pool).get("deletionTimestamp"):
            rt.queue.add(("ippool", str(meta(pool).get("name"))))
    if att.vip is not None:
        rt.queue.add(("vip", att.vip))  # its status names the borrower; it may wait to go
