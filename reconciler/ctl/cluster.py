"""What the apiserver says, read once for an audit or a rebuild.

Lists (not informers): nicpoolctl is a one-shot command. Pods are turned
into the planning core's ``PodView`` by the same mapping the controller uses
(:mod:`reconciler.objects`), so a rebuild derives owners, ordinals and
workloads exactly as the controller would.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reconciler.core.planning import PodView
from reconciler.core.workloads import StatefulSetState
from reconciler.kube.client import JSON, KubeClient
from reconciler.kube.resources import IPS, NADS, PODS, REPLICASETS, STATEFULSETS, SUBNETS
from reconciler.objects import is_deleting, nad_config, pod_view, statefulset_state
from store.core.identity import PodRef


@dataclass
class ClusterSnapshot:
    pods: dict[PodRef, PodView] = field(default_factory=dict)
    deleting: set[PodRef] = field(default_factory=set)
    """Pods with a deletionTimestamp (still holding their addresses)."""
    statefulsets: dict[str, StatefulSetState] = field(default_factory=dict)
    """``"ns/name"`` -> state, for StatefulSet address retention."""
    ip_objects: dict[str, JSON] = field(default_factory=dict)
    """Kube-OVN IP objects by name (``<pod>.<ns>.<provider>``)."""
    nads: dict[str, str | None] = field(default_factory=dict)
    subnets: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Subnet objects' ``spec`` by name."""


def _key(obj: JSON) -> str:
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace")
    name = str(meta.get("name", ""))
    return f"{namespace}/{name}" if namespace else name


def read_cluster(kube: KubeClient, *, for_rebuild: bool = False) -> ClusterSnapshot:
    """Pods, StatefulSets and IP objects; NADs and Subnets too when rebuilding."""
    snapshot = ClusterSnapshot()
    replicasets = {_key(rs): rs for rs in kube.list(REPLICASETS)[0]}
    for pod in kube.list(PODS)[0]:
        view = pod_view(pod, replicasets.get)
        snapshot.pods[view.ref] = view
        if is_deleting(pod):
            snapshot.deleting.add(view.ref)
    for sts in kube.list(STATEFULSETS)[0]:
        state = statefulset_state(sts)
        if state is not None:
            snapshot.statefulsets[_key(sts)] = state
    snapshot.ip_objects = {_key(ip): ip for ip in kube.list(IPS)[0]}
    if for_rebuild:
        snapshot.nads = {_key(nad): nad_config(nad) for nad in kube.list(NADS)[0]}
        snapshot.subnets = {_key(s): dict(s.get("spec") or {}) for s in kube.list(SUBNETS)[0]}
    return snapshot
