"""The per-pod workflow: plan -> allocate in etcd -> annotate the pod -> IP objects.

Idempotent and resumable, so a new leader simply runs it again for every
pod: planning is pure; ``Ipam.allocate`` returns an existing attachment of
the same pod UID unchanged; the annotation patch is skipped when the pod
already carries it; IP objects are rewritten only when they drift.

Bad input never allocates: a plan with refusals reaches no store call, and
when the store refuses one NIC (address held by another pod, pool
exhausted) the NICs this run just allocated for the pod are released again
(host-local's rollback), the refusal becomes an Event and a metric, and the
pod is retried with long backoff in case the world changes.

Release runs on pod deletion, and when a pod finishes (phase Succeeded or
Failed: it never runs again; nor is it allocated), subject to StatefulSet
retention. A NIC holding an IPAMClaim's or a VM's addresses is never
released with its pod: it leaves its owner (:mod:`reconciler.ownerflow`),
and the claim's status follows every change (:mod:`reconciler.claimsync`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from reconciler import claimsync, ipobjects, metrics, ownerflow, vipflow
from reconciler.core import annotations as ann
from reconciler.core.planning import NicPlan, Plan, PodView, World, plan_pod
from reconciler.core.workloads import STATEFULSET, retention_on_pod_deletion, statefulset_ordinal
from reconciler.finalizers import after_release
from reconciler.kube.resources import IPS, PODS, REPLICASETS, STATEFULSETS
from reconciler.objects import (
    annotations_of,
    has_finished,
    is_deleting,
    node_name,
    pod_ref,
    pod_uid,
    pod_view,
    statefulset_state,
    uses_host_network,
)
from reconciler.refusals import refuse, retry_when_cooled
from reconciler.runtime import Runtime
from store.core.identity import AttachmentRef, PodRef, PodUID
from store.core.records import Attachment
from store.core.requests import AllocationRequest
from store.errors import HeldByPredecessor, PartialAllocation, PermanentError, TemporaryError
from store.leases import Result
from store.retry import retrying

log = logging.getLogger("nicpool.pods")


def world(rt: Runtime) -> World:
    """The snapshot planning reads: published whole, never changed under a planner."""
    return rt.views.world


def retry_refused(rt: Runtime) -> None:
    """Queue every refused pod again (:meth:`Runtime.retry_refused`)."""
    rt.retry_refused()


def sync_pod(rt: Runtime, key: str) -> bool:
    """Run the workflow for the pod named ``key`` (``ns/name``).

    The queue is keyed by name, not UID, so a pod and a successor of the same
    name (a StatefulSet pod, a recreated bare pod) never race: the old one's
    attachments are settled first, then the new one is allocated.
    Returns False when the pod must be retried later (refused).
    """
    tombs = rt.tombstones.get(key)
    while tombs:
        release_pod(rt, tombs[0])
        tombs.pop(0)
    rt.tombstones.pop(key, None)
    pod = rt.informer(PODS).get(key)
    proven = _settle_predecessors(rt, key, pod)
    if pod is None or uses_host_network(pod):
        return True
    if has_finished(pod):
        rt.refused.discard(key)
        release_pod(rt, pod)
        return True
    if is_deleting(pod):
        return True
    view = pod_view(pod, rt.informer(REPLICASETS).get)
    plan = plan_pod(view, world(rt))
    for nad in plan.defaulted:
        log.info("%s: NAD %s names no provider; using the default name", key, nad)
    if not plan.ok:
        claimsync.note_refusals(rt, plan.claim_errors)
        refuse(rt, key, pod, plan.errors)
        return False
    if not plan.nics:
        rt.refused.discard(key)
        return True
    shared = ownerflow.sharing_refusals(rt, view, plan.nics)
    if shared:
        claimsync.note_refusals(rt, [(e.claim, e) for e in shared])
        refuse(rt, key, pod, shared)
        return False
    return _allocate_and_annotate(rt, key, pod, view, plan, proven=proven)


def _settle_predecessors(rt: Runtime, key: str, pod: Mapping[str, Any] | None) -> bool:
    """Attachments under this pod name held by a UID that is not the pod's: free or keep.

    Checked against the apiserver (not the cache) before anything is freed,
    because a new leader's cache may not have seen the newest pod yet. When
    the apiserver shows another UID than the cached pod's, the cache is
    behind: nothing is done and the pod is retried (``CacheBehind``), so a
    dead pod is never planned over a live one. Returns True when the live
    pod was checked and is the cached one (proof its predecessors are gone).
    """
    if pod is not None and not rt.index.loaded:
        return False  # the store refuses a predecessor's NIC until proven gone
    require_index(rt)
    uid = pod_uid(pod) if pod is not None else None
    stale = [att for att in rt.index.of_pod(_ref_of(key)) if att.uid != uid]
    if not stale:
        return False
    live_uid = _live_uid(rt, key)
    if pod is not None and live_uid != uid:
        raise CacheBehind(f"{key}: the apiserver has pod uid {live_uid}, the cache {uid}")
    for att in stale:
        if att.uid != live_uid:
            release_unless_retained(rt, att)
    return pod is not None


def _live_uid(rt: Runtime, key: str) -> PodUID | None:
    namespace, name = key.split("/", 1)
    live = rt.kube.get(PODS, namespace, name)
    return pod_uid(live) if live is not None else None


class CacheBehind(TemporaryError):
    """The informer has not caught up with the apiserver for this pod yet."""

    reason = "CacheBehind"


def _ref_of(key: str) -> PodRef:
    namespace, name = key.split("/", 1)
    return PodRef(namespace, name)


def _allocate_and_annotate(
    rt: Runtime, key: str, pod: Mapping[str, Any], view: PodView, plan: Plan, *, proven: bool
) -> bool:
    current = annotations_of(pod)
    known = {nic.ref: rt.index.get(nic.ref) for nic in plan.nics}
    reused = {ref: att for ref, att in known.items() if att is not None and att.uid == view.uid}
    if len(reused) == len(plan.nics):
        done = list(reused.values())
        if ann.is_rendered(current, _rendered(plan.nics, done)):
            _ensure_ip_objects(rt, done, pod)
            _finished(rt, key, view.uid)
            return True
    blocked = [n.blocked for n in plan.nics if n.ref not in reused and n.blocked is not None]
    if blocked:
        refuse(rt, key, pod, blocked)  # what it holds stays; nothing new from a deleted object
        return False
    requests = [
        _request(nic, known[nic.ref], proven=proven) for nic in plan.nics if nic.ref not in reused
    ]
    vips = {nic.ref: nic.vip for nic in plan.nics if nic.vip is not None}
    results = _allocate(rt, key, view.uid, requests, vips)
    fresh = [r for r in results if isinstance(r, Attachment)]
    errors = [r for r in results if isinstance(r, PermanentError)]
    if errors:
        _roll_back(rt, fresh, current)
        if not rt.index.loaded:
            # The refusal may be this pod's own lease, not yet in the index: look again soon.
            raise IndexLoading(f"{key}: {errors[0]} (re-checking once the index is loaded)")
        claims = {nic.ref: nic.claim for nic in plan.nics if nic.claim}
        refused = zip(requests, results, strict=True)
        claimsync.note_refusals(
            rt,
            [
                (claims[r.ref], e)
                for r, e in refused
                if isinstance(e, PermanentError) and r.ref in claims
            ],
        )
        refuse(rt, key, pod, errors)
        retry_when_cooled(rt, key, errors)
        return False
    attachments = list(reused.values()) + fresh
    wanted = _rendered(plan.nics, attachments)
    if not ann.is_rendered(current, wanted):
        if any(att.fence != rt.fence.revision for att in attachments):
            # Leased under an earlier leadership, never announced: finishing its work.
            metrics.WORKFLOW_RESUMES.inc()
        patch = {"metadata": {"uid": view.uid, "annotations": wanted}}
        # Remembered before the patch: the watch may deliver its echo before the
        # patch call returns here. The echo then needs no second visit.
        rt.own_writes.set(key, dict(wanted))
        for attempt in retrying(metrics.ANNOTATE_POD, subject=key, deadline=5.0):
            with attempt:
                rt.kube.merge_patch(PODS, view.namespace, view.name, patch)
    seen = rt.first_seen.get(view.uid)
    if seen is not None:
        metrics.ALLOCATION_SECONDS.observe(time.monotonic() - seen)
    _ensure_ip_objects(rt, attachments, pod)
    claimsync.note_allocated(rt, plan.nics)
    _finished(rt, key, view.uid)
    return True


def _finished(rt: Runtime, key: str, uid: PodUID) -> None:
    rt.refused.discard(key)
    rt.first_seen.pop(uid, None)


def _allocate(
    rt: Runtime,
    key: str,
    uid: PodUID,
    requests: list[AllocationRequest],
    vips: Mapping[AttachmentRef, str],
) -> list[Result]:
    """Allocate, index what committed, and prove predecessors gone when the store asks.

    A NIC still held by another UID of this pod name is refused by the store
    (``HeldByPredecessor``) until the caller proves that pod gone: the
    apiserver shows the name held by this pod's UID. Then those NICs are
    asked again with the proof. Whatever committed is indexed even when a
    later subnet fails (``PartialAllocation``), so nothing leaks.
    """
    if not requests:
        return []
    try:
        results = vipflow.allocate(rt, requests, vips)
    except PartialAllocation as exc:
        for att in exc.committed:
            rt.index.put(att)
        raise
    held = {i: r for i, r in enumerate(results) if isinstance(r, HeldByPredecessor)}
    if any(requests[i].replaces is not None for i in held):
        raise CacheBehind(f"{key}: held by yet another pod uid; looking again later")
    if held:
        live_uid = _live_uid(rt, key)
        if live_uid != uid:
            raise CacheBehind(f"{key}: the apiserver has pod uid {live_uid}, the cache {uid}")
        proven = [replace(requests[i], replaces=PodUID(r.holder)) for i, r in held.items()]
        for i, result in zip(held, _allocate(rt, key, uid, proven, vips), strict=True):
            results[i] = result
    for result in results:
        if isinstance(result, Attachment):
            rt.index.put(result)
    return results


def _request(nic: NicPlan, predecessor: Attachment | None, *, proven: bool) -> AllocationRequest:
    """The store request for one NIC.

    A StatefulSet pod whose predecessor's attachment is still there takes
    over that attachment's addresses (``adopt``); its ``ip_pool`` entry or
    fixed address is that same address, so it is not passed again (the store
    would otherwise first find the address held, then read the attachment
    being adopted and plan again: a wasted round trip). ``proven``: the
    apiserver was just checked, so the predecessor's UID is named as gone.
    """
    request = nic.request
    if predecessor is not None and proven:
        request = replace(request, replaces=predecessor.uid)
    if predecessor is not None and nic.adopt:
        return replace(request, fixed_ips=(), pool=())
    return request


def _rendered(nics: tuple[NicPlan, ...], attachments: list[Attachment]) -> dict[str, str]:
    by_ref = {att.ref: att for att in attachments}
    wanted: dict[str, str] = {}
    for nic in nics:
        wanted.update(
            ann.render(
                by_ref[nic.ref],
                provider=nic.ref.qualified,
                subnet_provider=nic.subnet_provider,
                routes_given=nic.routes_given,
            )
        )
    return wanted


def _roll_back(
    rt: Runtime,
    attachments: list[Attachment],
    current: Mapping[str, str],
) -> None:
    """Release what this run allocated for a pod another NIC of which was refused."""
    for att in attachments:
        if current.get(ann.key(att.ref.qualified, ann.ALLOCATED)) == "true":
            continue  # allocated and announced earlier: not ours to take back
        rt.ipam.release(att.ref, fence=rt.fence, uid=att.uid)
        rt.index.drop(att.ref)


def _ensure_ip_objects(rt: Runtime, attachments: list[Attachment], pod: Mapping[str, Any]) -> None:
    ips = rt.informer(IPS)
    with rt.ip_objects_lock:
        if not ips.synced.is_set():
            # The IP cache is listed after the caches planning needs; this pod is
            # visited again once it is (see Controller._ip_objects_listed).
            rt.ip_objects_pending.update(str(att.ref.pod) for att in attachments)
            return
    node = node_name(pod) or ""
    for att in attachments:
        current = ips.get(ipobjects.ip_object_name(att))
        ipobjects.ensure_ip_object(rt.kube, att, current, rt.ip_written, node=node)


def require_index(rt: Runtime) -> None:
    """Work that trusts the index's completeness waits until it is loaded."""
    if not rt.index.loaded:
        raise IndexLoading("the attachment index is still loading")


class IndexLoading(TemporaryError):
    reason = "IndexLoading"


def release_pod(rt: Runtime, pod: Mapping[str, Any]) -> None:
    """A pod is gone (or finished): free its attachments unless its StatefulSet keeps them."""
    require_index(rt)
    ref, uid = pod_ref(pod), pod_uid(pod)
    rt.first_seen.pop(uid, None)
    for att in rt.index.of_pod(ref):
        if att.uid != uid:
            continue  # a successor of the same name already holds it
        release_unless_retained(rt, att)


def release_unless_retained(rt: Runtime, att: Attachment) -> bool:
    """Release ``att`` unless StatefulSet retention keeps it; True when released.
    A NIC holding an owner's addresses leaves the owner instead."""
    if att.owner is not None:
        return ownerflow.leave(rt, att)
    workload = att.workload
    sts = None
    if workload is not None:
        sts = rt.informer(STATEFULSETS).get(f"{att.ref.pod.namespace}/{workload.name}")
    ordinal = statefulset_ordinal(att.ref.pod.name)
    decision = retention_on_pod_deletion(workload, ordinal, statefulset_state(sts))
    if decision.keep and not _release_requested(rt, att):
        log.info("%s: kept (%s)", att.ref, decision.why)
        return False
    released = rt.ipam.release(att.ref, fence=rt.fence, uid=att.uid)
    if released is None:
        current = rt.ipam.get(att.ref)
        if current is not None:
            # The store refused: a successor of this name holds the NIC now.
            # Its index entry and IP object are the successor's: keep them.
            rt.index.put(current)
            log.info("%s: not released; pod uid %s holds it now", att.ref, current.uid)
            return False
    if released is not None:
        log.info("%s: released %s (%s)", att.ref, released.ip_csv(), decision.why)
        retry_refused(rt)  # a pod refused for want of an address may fit now
        after_release(rt, released)  # a Subnet, IPPool or Vip may wait for it to be deleted
    ipobjects.forget_ip_object(rt.ip_written, ipobjects.ip_name(att.ref))
    ipobjects.delete_ip_object(rt.kube, ipobjects.ip_name(att.ref))
    # Last: while the IP object's delete can still fail, the index entry is what
    # brings the retry back here (the store's release is done, and idempotent).
    rt.index.drop(att.ref)
    return True


def settle_statefulset(rt: Runtime, key: str) -> bool:
    """A StatefulSet (``ns/name``) shrank or went away: revisit its pods that are gone,
    so the addresses it no longer keeps are released."""
    require_index(rt)
    namespace, name = key.split("/", 1)
    pods = rt.informer(PODS)
    for att in rt.index.all():
        workload = att.workload
        if workload is None or workload.kind != STATEFULSET or workload.name != name:
            continue
        if att.ref.pod.namespace == namespace and pods.get(str(att.ref.pod)) is None:
            rt.queue.add(("pod", str(att.ref.pod)))
    return True


def _release_requested(rt: Runtime, att: Attachment) -> bool:
    """An operator marked this NIC (``nicpoolctl release --force``): read from the store,
    since the index holds only the controller's own writes."""
    current = rt.ipam.get(att.ref)
    return current is not None and current.uid == att.uid and current.release_requested
