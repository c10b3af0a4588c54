"""Informer callbacks: keep the planning views current and queue work (every replica).

Each callback runs on its informer's thread and must be quick: it updates a
view (:mod:`reconciler.views`) and, on the leader, queues keys for the
workers. A standby keeps its views warm and queues nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from reconciler.core import annotations as ann
from reconciler.core.claims import ClaimView, claim_from_object
from reconciler.core.errors import ClaimRefusal
from reconciler.core.ippools import ippool_from_object
from reconciler.kube.informer import Handler, object_key
from reconciler.kube.resources import (
    IPAMCLAIMS,
    IPPOOLS,
    NADS,
    NODES,
    PODS,
    STATEFULSETS,
    SUBNETS,
    VIPS,
    VIRTUALMACHINES,
)
from reconciler.objects import (
    annotations_of,
    has_finished,
    is_deleting,
    meta,
    nad_config,
    node_name,
    node_readiness,
    pod_uid,
)
from reconciler.podflow import retry_refused
from reconciler.runtime import Key, Runtime
from reconciler.subnetsync import refresh_view
from reconciler.vipsync import refresh_view as refresh_vip
from store.errors import PermanentError

JSON = dict[str, Any]


class Handlers:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def by_resource(self) -> dict[str, Handler]:
        """The callback of each watched resource, by plural."""
        found: dict[str, Callable[[JSON | None, JSON | None], None]] = {
            PODS.plural: self.on_pod,
            NADS.plural: self.on_nad,
            SUBNETS.plural: self.on_subnet,
            IPPOOLS.plural: self.on_ippool,
            VIPS.plural: self.on_vip,
            STATEFULSETS.plural: self.on_statefulset,
            IPAMCLAIMS.plural: self.on_ipamclaim,
            VIRTUALMACHINES.plural: self.on_vm,
            NODES.plural: self.on_node,
        }
        return found

    def on_pod(self, old: JSON | None, new: JSON | None) -> None:
        rt = self.rt
        if new is not None:
            uid = pod_uid(new)
            rt.first_seen.setdefault(uid, time.monotonic())
            if old is not None and pod_uid(old) != uid:
                self._tombstone(old)
            key = object_key(new)
            node = node_name(new)
            if node and is_deleting(new) and (old is None or not is_deleting(old)):
                self._enqueue(("node", node))  # its deletion may get stuck there
            if old is None and announced(new) and not rt.informer(PODS).synced.is_set():
                # A new leader's pod list: a pod allocated earlier waits for the index
                # and the whole list (Controller._lead queues every pod then); a new
                # one is queued as its page arrives.
                return
            finished = old is not None and has_finished(new) and not has_finished(old)
            if old is None or finished or annotations_of(old) != annotations_of(new):
                if old is not None and not finished and self._echo_of_own_write(key, old, new):
                    return
                self._enqueue(("pod", key), front=not announced(new))
            elif old is not None and node_name(old) != node:
                self._enqueue(("pod", key))  # its IP objects name the node
            return
        if old is not None:
            self._tombstone(old)

    def _echo_of_own_write(self, key: str, old: JSON, new: JSON) -> bool:
        """True when the only change is this controller's own annotation patch.

        Compared by content, not resourceVersion: the watch may deliver the echo
        before the patch call has even returned the version it wrote.
        """
        own = self.rt.own_writes.get(key)
        if own is None:
            return False
        before, after = annotations_of(old), annotations_of(new)
        changed = {k: v for k, v in after.items() if before.get(k) != v}
        removed = before.keys() - after.keys()
        if removed or not changed or any(own.get(k) != v for k, v in changed.items()):
            return False
        self.rt.own_writes.pop(key)
        return True

    def _tombstone(self, pod: JSON) -> None:
        """The pod with this UID is gone (the informer reports only that UID)."""
        rt = self.rt
        rt.first_seen.pop(pod_uid(pod), None)
        key = object_key(pod)
        rt.stuck.pop(key, None)  # the pod that was stuck is gone (a successor starts afresh)
        if rt.informer(PODS).get(key) is None:
            rt.refused.discard(key)
        if rt.leading:
            rt.tombstones.setdefault(key, []).append(pod)
            rt.queue.add(("pod", key))

    def on_nad(self, old: JSON | None, new: JSON | None) -> None:
        obj = new or old
        assert obj is not None
        if new is None:
            self.rt.views.set_nad(object_key(obj), None, present=False)
        else:
            self.rt.views.set_nad(object_key(new), nad_config(new))
        retry_refused(self.rt)

    def on_subnet(self, old: JSON | None, new: JSON | None) -> None:
        obj = new or old
        assert obj is not None
        name = str(meta(obj).get("name"))
        refresh_view(self.rt, name, new)
        if old is None or new is None or _changed(old, new):
            # One Subnet's change can settle another's overlap and its pools' validity.
            for other in self.rt.views.all_subnets.keys() | {name}:
                self._enqueue(("subnet", other))
            for pool in self.rt.views.world.ippools:
                self._enqueue(("ippool", pool))
            retry_refused(self.rt)

    def on_ippool(self, old: JSON | None, new: JSON | None) -> None:
        obj = new or old
        assert obj is not None
        name = str(meta(obj).get("name"))
        view, error = None, None
        if new is not None:
            try:
                view = ippool_from_object(name, new.get("spec") or {}, meta(new), new.get("status"))
            except PermanentError as exc:
                error = exc
        self.rt.views.set_ippool(name, view, error=error)
        if old is None or new is None or _changed(old, new):
            # Pools of one Subnet are judged together (overlaps), and the Subnet's
            # registered spec carries their addresses.
            for pool in self.rt.views.world.ippools.keys() | {name}:
                self._enqueue(("ippool", pool))
            for subnet in {str((o.get("spec") or {}).get("subnet")) for o in (old, new) if o}:
                self._enqueue(("subnet", subnet))
            retry_refused(self.rt)

    def on_vip(self, old: JSON | None, new: JSON | None) -> None:
        obj = new or old
        assert obj is not None
        name = str(meta(obj).get("name"))
        refresh_vip(self.rt, name, new)
        if old is None or new is None or _changed(old, new):
            self._enqueue(("vip", name))
        if new is not None and (new.get("status") or {}) != ((old or {}).get("status") or {}):
            retry_refused(self.rt)  # reserved now: pods waiting for it may go

    def on_statefulset(self, old: JSON | None, new: JSON | None) -> None:
        if old is None:
            return
        shrunk = new is None or (new.get("spec") or {}).get("replicas", 1) < (
            old.get("spec") or {}
        ).get("replicas", 1)
        if shrunk or new is None or meta(new).get("uid") != meta(old).get("uid"):
            self._enqueue(("sts", object_key(old)))

    def on_ipamclaim(self, old: JSON | None, new: JSON | None) -> None:
        """Planning's view of the claim; its status sync on every change (a deleted
        claim's addresses are settled there). Pods wait on a claim that appears or
        changes its spec: retried then."""
        obj = new or old
        assert obj is not None
        key = object_key(obj)
        view: ClaimView | ClaimRefusal | None = None
        if new is not None:
            try:
                view = claim_from_object(new)
            except ClaimRefusal as exc:
                view = exc  # a pod naming it is refused with this reason
        self.rt.views.set_claim(key, view)
        self._enqueue(("claim", key))
        if new is not None and (old is None or old.get("spec") != new.get("spec")):
            retry_refused(self.rt)

    def on_vm(self, old: JSON | None, new: JSON | None) -> None:
        """A VirtualMachine's UID for keep-vm-ip leases; its end settles its NICs."""
        obj = new or old
        assert obj is not None
        key = object_key(obj)
        self.rt.views.set_vm(key, None if new is None else str(meta(new).get("uid", "")))
        if new is None or meta(new).get("deletionTimestamp"):
            self._enqueue(("vm", key))

    def on_node(self, old: JSON | None, new: JSON | None) -> None:
        """A node turning NotReady (or Ready again, or going away) may make pods stuck."""
        obj = new or old
        assert obj is not None
        was = node_readiness(old) if old is not None else None
        now = node_readiness(new) if new is not None else None
        if was != now and not (was is None and now is not None and now.ready):
            self._enqueue(("node", str(meta(obj).get("name"))))

    def _enqueue(self, key: Key, *, front: bool = False) -> None:
        if self.rt.leading:
            self.rt.queue.add(key, front=front)


def _changed(old: JSON, new: JSON) -> bool:
    """The spec changed or deletion began. Status and finalizer updates are the
    controller's own writes: judging every pool again for them would only churn."""
    return old.get("spec") != new.get("spec") or meta(old).get("deletionTimestamp") != meta(
        new
    ).get("deletionTimestamp")


def announced(pod: JSON) -> bool:
    """True when the pod already carries an ``allocated`` annotation (work done before)."""
    return bool(ann.allocated_providers(annotations_of(pod)))
