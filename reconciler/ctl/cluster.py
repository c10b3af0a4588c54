"""What the apiserver says, read once for an audit or a rebuild.

Lists (not informers): nicpoolctl is a one-shot command. Pods are turned
into the planning core's ``PodView`` by the same mapping the controller uses
(:mod:`reconciler.objects`), so a rebuild derives owners, ordinals and
workloads exactly as the controller would.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reconciler.core.owners import ObjectState, object_state
from reconciler.core.planning import PodView
from reconciler.core.workloads import StatefulSetState
from reconciler.kube.client import JSON, KubeClient
from reconciler.kube.errors import NotFound
from reconciler.kube.resources import (
    IPAMCLAIMS,
    IPPOOLS,
    IPS,
    NADS,
    PODS,
    REPLICASETS,
    STATEFULSETS,
    SUBNETS,
    VIPS,
    VIRTUALMACHINEINSTANCES,
    VIRTUALMACHINES,
    Resource,
)
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
    ippools: dict[str, dict[str, Any]] = field(default_factory=dict)
    """IPPool objects' ``spec`` by name (``ip_pool: <name>``, the pool audit)."""
    ippool_objects: dict[str, JSON] = field(default_factory=dict)
    """IPPool objects whole (metadata for the overlap order, status)."""
    subnet_objects: dict[str, JSON] = field(default_factory=dict)
    vips: dict[str, JSON] = field(default_factory=dict)
    """Vip objects by name (the Vip audit, rebuilding pods that borrow one)."""
    namespace: str | None = None
    """When set, only this namespace's pods and IP objects were read (``--namespace``)."""
    claims: dict[str, ObjectState] = field(default_factory=dict)
    vms: dict[str, ObjectState] = field(default_factory=dict)
    vmis: dict[str, ObjectState] = field(default_factory=dict)
    """IPAMClaims, VirtualMachines and VMIs by ``"ns/name"`` (owners of addresses)."""


def _key(obj: JSON) -> str:
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace")
    name = str(meta.get("name", ""))
    return f"{namespace}/{name}" if namespace else name


def _in(namespace: str | None, obj: JSON) -> bool:
    if namespace is None:
        return True
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    return (meta.get("namespace") or spec.get("namespace")) == namespace


def read_cluster(
    kube: KubeClient, *, namespace: str | None = None, for_rebuild: bool = False
) -> ClusterSnapshot:
    """Pods, StatefulSets and IP objects; NADs and Subnets too when rebuilding.

    With ``namespace``, pods, StatefulSets and IP objects (by ``spec.namespace``)
    of that namespace only; Subnets are cluster scoped and always read whole.
    """
    snapshot = ClusterSnapshot(namespace=namespace)
    replicasets = {_key(rs): rs for rs in kube.list(REPLICASETS)[0]}
    for pod in (p for p in kube.list(PODS)[0] if _in(namespace, p)):
        view = pod_view(pod, replicasets.get)
        snapshot.pods[view.ref] = view
        if is_deleting(pod):
            snapshot.deleting.add(view.ref)
    for sts in (s for s in kube.list(STATEFULSETS)[0] if _in(namespace, s)):
        state = statefulset_state(sts)
        if state is not None:
            snapshot.statefulsets[_key(sts)] = state
    snapshot.ip_objects = {_key(ip): ip for ip in kube.list(IPS)[0] if _in(namespace, ip)}
    snapshot.claims = _states(kube, IPAMCLAIMS, namespace)
    snapshot.vms = _states(kube, VIRTUALMACHINES, namespace)
    snapshot.vmis = _states(kube, VIRTUALMACHINEINSTANCES, namespace)
    # Cluster scoped and few: always read whole (the pool and Vip audits need them).
    snapshot.subnet_objects = {_key(s): s for s in kube.list(SUBNETS)[0]}
    snapshot.subnets = {k: dict(s.get("spec") or {}) for k, s in snapshot.subnet_objects.items()}
    snapshot.ippool_objects = {_key(p): p for p in kube.list(IPPOOLS)[0]}
    snapshot.ippools = {k: dict(p.get("spec") or {}) for k, p in snapshot.ippool_objects.items()}
    snapshot.vips = {_key(v): v for v in kube.list(VIPS)[0]}
    if for_rebuild:
        snapshot.nads = {_key(nad): nad_config(nad) for nad in kube.list(NADS)[0]}
    return snapshot


def _states(kube: KubeClient, resource: Resource, namespace: str | None) -> dict[str, ObjectState]:
    """Objects of a resource whose CRD may not be installed (KubeVirt's): none then."""
    try:
        items = kube.list(resource)[0]
    except NotFound:
        return {}
    return {
        _key(obj): state for obj in items if _in(namespace, obj) if (state := object_state(obj))
    }
