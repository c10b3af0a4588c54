"""Kubernetes objects (JSON dicts from the informers) -> the pure core's values.

Kept apart from the I/O so the mapping (owner chains, ordinals, what counts
as a NAD with an empty spec) is testable with plain dicts.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from typing import Any

from reconciler.core.claims import virt_launcher_vm
from reconciler.core.planning import PodView
from reconciler.core.stuck import NodeReadiness
from reconciler.core.workloads import (
    DEPLOYMENT,
    STATEFULSET,
    StatefulSetState,
    statefulset_ordinal,
)
from store.core.identity import PodRef, PodUID
from store.core.records import WorkloadRef

JSON = dict[str, Any]
Lookup = Callable[[str], JSON | None]
"""``"ns/name"`` -> the cached object, or None."""


def meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    found = obj.get("metadata")
    return found if isinstance(found, Mapping) else {}


def pod_ref(pod: Mapping[str, Any]) -> PodRef:
    m = meta(pod)
    return PodRef(str(m.get("namespace", "")), str(m.get("name", "")))


def pod_uid(pod: Mapping[str, Any]) -> PodUID:
    return PodUID(str(meta(pod).get("uid", "")))


def annotations_of(obj: Mapping[str, Any]) -> dict[str, str]:
    found = meta(obj).get("annotations") or {}
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, Mapping) else {}


def controller_owner(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for owner in meta(obj).get("ownerReferences") or []:
        if isinstance(owner, Mapping) and owner.get("controller"):
            return owner
    return None


def workload_of(pod: Mapping[str, Any], replicasets: Lookup) -> WorkloadRef | None:
    """The pod's workload: its StatefulSet, or the Deployment behind its ReplicaSet, or
    the direct controller (ReplicaSet, DaemonSet, Job, ...)."""
    owner = controller_owner(pod)
    if owner is None:
        return None
    kind, name, uid = str(owner.get("kind")), str(owner.get("name")), str(owner.get("uid"))
    if kind == "ReplicaSet":
        rs = replicasets(f"{meta(pod).get('namespace')}/{name}")
        rs_owner = controller_owner(rs) if rs is not None else None
        if rs_owner is not None and rs_owner.get("kind") == DEPLOYMENT:
            return WorkloadRef(DEPLOYMENT, str(rs_owner.get("name")), str(rs_owner.get("uid")))
    return WorkloadRef(kind, name, uid)


def pod_view(pod: Mapping[str, Any], replicasets: Lookup) -> PodView:
    m = meta(pod)
    workload = workload_of(pod, replicasets)
    ordinal = None
    if workload is not None and workload.kind == STATEFULSET:
        labels = m.get("labels") or {}
        ordinal = statefulset_ordinal(str(m.get("name", "")), labels)
    return PodView(
        namespace=str(m.get("namespace", "")),
        name=str(m.get("name", "")),
        uid=pod_uid(pod),
        annotations=annotations_of(pod),
        workload=workload,
        ordinal=ordinal,
        vm=virt_launcher_vm(m.get("ownerReferences")),
    )


FINISHED_PHASES = frozenset({"Succeeded", "Failed"})
"""Terminal pod phases: the kubelet never runs a pod again once it reaches one."""


def has_finished(pod: Mapping[str, Any]) -> bool:
    """True for a pod in phase Succeeded or Failed (a Job's pod, an evicted pod).

    Any other value, or none, is not finished: only the two terminal phases
    Kubernetes defines release an address."""
    status = pod.get("status")
    phase = status.get("phase") if isinstance(status, Mapping) else None
    return isinstance(phase, str) and phase in FINISHED_PHASES


def is_deleting(obj: Mapping[str, Any]) -> bool:
    return bool(meta(obj).get("deletionTimestamp"))


def uses_host_network(pod: Mapping[str, Any]) -> bool:
    spec = pod.get("spec") or {}
    return bool(spec.get("hostNetwork"))


def nad_config(nad: Mapping[str, Any]) -> str | None:
    """``spec.config`` of a NAD; None for an empty spec (Multus reads node files then)."""
    spec = nad.get("spec") or {}
    config = spec.get("config") if isinstance(spec, Mapping) else None
    return config if isinstance(config, str) and config.strip() else None


def statefulset_state(sts: Mapping[str, Any] | None) -> StatefulSetState | None:
    if sts is None:
        return None
    spec = sts.get("spec") or {}
    replicas = spec.get("replicas")
    return StatefulSetState(
        uid=str(meta(sts).get("uid", "")),
        replicas=1 if replicas is None else int(replicas),
        deleting=is_deleting(sts),
    )


def parse_time(value: object) -> float | None:
    """An API timestamp (RFC 3339, e.g. ``2025-01-02T03:04:05Z``) in epoch seconds;
    None when absent or unreadable."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        moment = datetime.datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None  # the API always writes UTC with "Z"; a bare time is a guess
    return moment.timestamp()


def deletion_time(obj: Mapping[str, Any]) -> float | None:
    """When the object's graceful deletion ends (``deletionTimestamp``), if it is deleting."""
    return parse_time(meta(obj).get("deletionTimestamp"))


def node_name(pod: Mapping[str, Any]) -> str | None:
    """The node the pod is bound to (``spec.nodeName``), if any."""
    spec = pod.get("spec")
    name = spec.get("nodeName") if isinstance(spec, Mapping) else None
    return name if isinstance(name, str) and name else None


def node_readiness(node: Mapping[str, Any]) -> NodeReadiness:
    """The node's ``Ready`` condition: ready unless it says ``False`` or ``Unknown``."""
    status = node.get("status")
    conditions = status.get("conditions") if isinstance(status, Mapping) else None
    for condition in conditions if isinstance(conditions, list) else []:
        if isinstance(condition, Mapping) and condition.get("type") == "Ready":
            ready = condition.get("status") not in ("False", "Unknown")
            return NodeReadiness(ready, parse_time(condition.get("lastTransitionTime")))
    return NodeReadiness(ready=True, since=None)
