"""The periodic garbage collector (leader only).

An attachment is an orphan when no cached pod of that name has its UID and
no StatefulSet retention keeps it. :func:`reconciler.core.gc.sweep` decides
which orphans have been seen twice, ``gc_grace`` apart; each is then
re-checked against the apiserver itself (not the cache) just before it is
freed.

Owner records (an IPAMClaim's, a VM NIC's addresses, read from etcd each
sweep: there are few) go the same way: an owner whose object is gone from
the caches and none of whose holder pods runs is a suspect; seen twice,
``gc_grace`` apart, it is settled (:func:`reconciler.ownerflow.settle_owner`
asks the apiserver itself, and frees nothing while a holder runs). That
catches a claim or VM deleted while no replica led.

IP objects nicpool wrote (label ``app.kubernetes.io/managed-by: nicpool``)
that show no attachment of the index (a release committed, its DELETE
failed, and leadership moved before the retry) go the same way too: seen
twice, ``gc_grace`` apart, still not shown by any attachment, they are
deleted, on the condition that nobody rewrote them since.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from reconciler.core.gc import has_live_owner, sweep
from reconciler.core.workloads import retention_on_pod_deletion, statefulset_ordinal
from reconciler.ipobjects import MANAGED_BY, delete_ip_object, ip_object_name
from reconciler.kube.resources import IPS, PODS, STATEFULSETS
from reconciler.objects import meta, pod_uid, statefulset_state
from reconciler.ownerflow import cached_owner_lives, settle_owner
from reconciler.podflow import release_unless_retained
from reconciler.runtime import Runtime
from store.core.identity import AttachmentRef, OwnerRef, PodUID
from store.core.records import Attachment

log = logging.getLogger("nicpool.gc")


class GarbageCollector:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.suspects: dict[AttachmentRef, float] = {}
        self.owner_suspects: dict[OwnerRef, float] = {}
        self.ip_suspects: dict[str, float] = {}

    def reset(self) -> None:
        """A new term as leader starts with no suspicions (the cache may be cold)."""
        self.suspects = {}
        self.owner_suspects = {}
        self.ip_suspects = {}

    def run_once(self, *, now: float | None = None) -> list[AttachmentRef]:
        now = time.monotonic() if now is None else now
        orphans = [att.ref for att in self.rt.index.all() if not self._owned(att)]
        result = sweep(self.suspects, orphans, now=now, grace=self.rt.settings.gc_grace)
        self.suspects = result.suspects
        freed = []
        for ref in result.free:
            att = self.rt.index.get(ref)
            if att is not None and not self._owned(att, live=True):
                log.info("GC: %s lost its pod %s; freeing", ref, att.uid)
                if release_unless_retained(self.rt, att):
                    freed.append(ref)
        self._sweep_owners(now)
        self._sweep_ip_objects(now)
        return freed

    def _sweep_ip_objects(self, now: float) -> list[str]:
        ips = self.rt.informer(IPS)
        if not ips.synced.is_set() or not self.rt.index.loaded:
            return []
        versions = {
            str(meta(obj).get("name")): str(meta(obj).get("resourceVersion"))
            for obj in ips.items()
            if (meta(obj).get("labels") or {}).get(MANAGED_BY) == "nicpool"
        }
        result = sweep(
            self.ip_suspects, self._stray(versions), now=now, grace=self.rt.settings.gc_grace
        )
        self.ip_suspects = result.suspects
        deleted = [name for name in self._stray(versions) if name in result.free]
        for name in deleted:
            log.info("GC: IP object %s shows no lease; deleting", name)
            delete_ip_object(self.rt.kube, name, resource_version=versions[name])
        return deleted

    def _stray(self, names: Iterable[str]) -> list[str]:
        """The IP objects among ``names`` that no attachment of the index shows."""
        shown = {ip_object_name(att) for att in self.rt.index.all()}
        return [name for name in names if name not in shown]

    def _sweep_owners(self, now: float) -> list[OwnerRef]:
        records = self.rt.ipam.owners()
        ended = [r.owner for r in records if not cached_owner_lives(self.rt, r)]
        result = sweep(self.owner_suspects, ended, now=now, grace=self.rt.settings.gc_grace)
        self.owner_suspects = result.suspects
        return [owner for owner in result.free if settle_owner(self.rt, owner)]

    def _owned(self, att: Attachment, *, live: bool = False) -> bool:
        pods = self.rt.informer(PODS)
        key = f"{att.ref.pod.namespace}/{att.ref.pod.name}"
        pod = (
            self.rt.kube.get(PODS, att.ref.pod.namespace, att.ref.pod.name)
            if live
            else pods.get(key)
        )
        uid = pod_uid(pod) if pod is not None else None
        sts = None
        if att.workload is not None:
            sts = self.rt.informer(STATEFULSETS).get(f"{att.ref.pod.namespace}/{att.workload.name}")
        retained = retention_on_pod_deletion(
            att.workload, statefulset_ordinal(att.ref.pod.name), statefulset_state(sts)
        ).keep
        return has_live_owner(att.uid, PodUID(uid) if uid else None, retained=retained)
