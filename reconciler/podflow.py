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

Release runs on pod deletion, subject to StatefulSet retention.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from reconciler import metrics
from reconciler.core import annotations as ann
from reconciler.core.planning import NicPlan, Plan, PodView, World, plan_pod
from reconciler.core.workloads import retention_on_pod_deletion, statefulset_ordinal
from reconciler.events import Involved
from reconciler.ipobjects import delete_ip_object, ensure_ip_object, ip_name
from reconciler.kube.resources import IPS, PODS, REPLICASETS, STATEFULSETS
from reconciler.objects import (
    annotations_of,
    is_deleting,
    meta,
    pod_ref,
    pod_uid,
    pod_view,
    statefulset_state,
    uses_host_network,
)
from reconciler.runtime import Runtime
from store.core.identity import PodRef, PodUID
from store.core.records import Attachment
from store.core.requests import AllocationRequest
from store.errors import PermanentError

log = logging.getLogger("nicpool.pods")

NAD_REASONS = {
    "NetworkAttachmentDefinitionNotFound",
    "NoProvider",
    "InvalidNetworkAttachmentDefinition",
}


def world(rt: Runtime) -> World:
    return World(nads=rt.nad_configs, subnets=rt.subnet_views, ippools=rt.ippool_views)


def involved(pod: Mapping[str, Any]) -> Involved:
    m = meta(pod)
    return Involved("Pod", "v1", str(m.get("namespace")), str(m.get("name")), str(m.get("uid")))


def sync_pod(rt: Runtime, key: str) -> bool:
    """Run the workflow for the pod named ``key`` (``ns/name``).

    The queue is keyed by name, not UID, so a pod and a successor of the same
    name (a StatefulSet pod, a recreated bare pod) never race: the old one's
    attachments are settled first, then the new one is allocated.
    Returns False when the pod must be retried later (refused).
    """
    for tomb in rt.tombstones.pop(key, []):
        release_pod(rt, tomb)
    pod = rt.informer(PODS).get(key)
    _settle_predecessors(rt, key, pod)
    if pod is None or uses_host_network(pod) or is_deleting(pod):
        return True
    view = pod_view(pod, rt.informer(REPLICASETS).get)
    plan = plan_pod(view, world(rt))
    for nad in plan.defaulted:
        log.info("%s: NAD %s names no provider; using the default name", key, nad)
    if not plan.ok:
        refuse(rt, key, pod, plan.errors)
        return False
    if not plan.nics:
        rt.refused.discard(key)
        return True
    return _allocate_and_annotate(rt, key, pod, view, plan)


def _settle_predecessors(rt: Runtime, key: str, pod: Mapping[str, Any] | None) -> None:
    """Attachments under this pod name held by a UID that is not the pod's: free or keep.

    Checked against the apiserver (not the cache) before anything is freed,
    because a new leader's cache may not have seen the newest pod yet.
    """
    uid = pod_uid(pod) if pod is not None else None
    stale = [att for att in rt.index.of_pod(_ref_of(key)) if att.uid != uid]
    if not stale:
        return
    namespace, name = key.split("/", 1)
    live = rt.kube.get(PODS, namespace, name)
    live_uid = pod_uid(live) if live is not None else None
    for att in stale:
        if att.uid != live_uid:
            release_unless_retained(rt, att)


def _ref_of(key: str) -> PodRef:
    namespace, name = key.split("/", 1)
    return PodRef(namespace, name)


def _allocate_and_annotate(
    rt: Runtime, key: str, pod: Mapping[str, Any], view: PodView, plan: Plan
) -> bool:
    current = annotations_of(pod)
    known = [rt.index.get(nic.ref) for nic in plan.nics]
    if all(att is not None and att.uid == view.uid for att in known):
        done = [att for att in known if att is not None]
        wanted = _rendered(plan.nics, done)
        if ann.is_rendered(current, wanted):
            _ensure_ip_objects(rt, done)
            _finished(rt, key, view.uid)
            return True
        metrics.WORKFLOW_RESUMES.inc()
    results = rt.ipam.allocate([_request(nic) for nic in plan.nics], fence=rt.fence)
    attachments = [r for r in results if isinstance(r, Attachment)]
    for att in attachments:
        rt.index.put(att)
    errors = [r for r in results if isinstance(r, PermanentError)]
    if errors:
        _roll_back(rt, attachments, current)
        refuse(rt, key, pod, errors)
        return False
    wanted = _rendered(plan.nics, attachments)
    if not ann.is_rendered(current, wanted):
        patch = {"metadata": {"uid": view.uid, "annotations": wanted}}
        rt.kube.merge_patch(PODS, view.namespace, view.name, patch)
    seen = rt.first_seen.get(view.uid)
    if seen is not None:
        metrics.ALLOCATION_SECONDS.observe(time.monotonic() - seen)
    _ensure_ip_objects(rt, attachments)
    _finished(rt, key, view.uid)
    return True


def _finished(rt: Runtime, key: str, uid: PodUID) -> None:
    rt.refused.discard(key)
    rt.first_seen.pop(uid, None)


def _request(nic: NicPlan) -> AllocationRequest:
    return AllocationRequest(
        ref=nic.ref,
        uid=nic.uid,
        subnet=nic.subnet,
        interface=nic.interface,
        fixed_ips=nic.fixed_ips,
        pool=nic.pool,
        mac=nic.mac,
        routes=nic.routes,
        default_route=nic.default_route,
        workload=nic.workload,
        adopt=nic.adopt,
    )


def _rendered(nics: tuple[NicPlan, ...], attachments: list[Attachment]) -> dict[str, str]:
    by_ref = {att.ref: att for att in attachments}
    wanted: dict[str, str] = {}
    for nic in nics:
        wanted.update(
            ann.render(
                by_ref[nic.ref],
                provider=nic.ref.provider,
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
        if current.get(ann.key(att.ref.provider, ann.ALLOCATED)) == "true":
            continue  # allocated and announced earlier: not ours to take back
        rt.ipam.release(att.ref, fence=rt.fence, uid=att.uid)
        rt.index.drop(att.ref)


def refuse(
    rt: Runtime,
    key: str,
    pod: Mapping[str, Any],
    errors: tuple[PermanentError, ...] | list[PermanentError],
) -> None:
    rt.refused.add(key)
    for error in errors:
        metrics.ALLOCATION_ERRORS.labels(error.reason).inc()
        if error.reason in NAD_REASONS:
            metrics.NAD_ERRORS.labels(error.reason).inc()
        log.warning("%s: refused (%s): %s", pod_ref(pod), error.reason, error)
        rt.recorder.warn(involved(pod), error.reason, str(error))


def _ensure_ip_objects(rt: Runtime, attachments: list[Attachment]) -> None:
    ips = rt.informer(IPS)
    for att in attachments:
        ensure_ip_object(rt.kube, att, ips.get(ip_name(att.ref)))


def release_pod(rt: Runtime, pod: Mapping[str, Any]) -> None:
    """A pod is gone: free its attachments unless its StatefulSet keeps them."""
    ref, uid = pod_ref(pod), pod_uid(pod)
    rt.first_seen.pop(uid, None)
    for att in rt.index.of_pod(ref):
        if att.uid != uid:
            continue  # a successor of the same name already holds it
        release_unless_retained(rt, att)


def release_unless_retained(rt: Runtime, att: Attachment) -> bool:
    """Release ``att`` unless StatefulSet retention keeps it; True when released."""
    workload = att.workload
    sts = None
    if workload is not None:
        sts = rt.informer(STATEFULSETS).get(f"{att.ref.pod.namespace}/{workload.name}")
    ordinal = statefulset_ordinal(att.ref.pod.name)
    decision = retention_on_pod_deletion(workload, ordinal, statefulset_state(sts))
    if decision.keep:
        log.info("%s: kept (%s)", att.ref, decision.why)
        return False
    released = rt.ipam.release(att.ref, fence=rt.fence, uid=att.uid)
    rt.index.drop(att.ref)
    if released is not None:
        log.info("%s: released %s (%s)", att.ref, released.ip_csv(), decision.why)
    delete_ip_object(rt.kube, att.ref)
    return True
