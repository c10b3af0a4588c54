"""What every part of the controller shares: clients, caches, the index, leadership.

One object, built by :mod:`reconciler.controller`, passed to the pod
workflow, the subnet sync and the GC so each stays a small module.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from reconciler.core.bounded import Bounded, BoundedMap
from reconciler.events import EventRecorder
from reconciler.index import AttachmentIndex
from reconciler.kube.client import KubeClient
from reconciler.kube.informer import Informer
from reconciler.kube.resources import (
    IPAMCLAIMS,
    IPPOOLS,
    IPS,
    NADS,
    NODES,
    PODS,
    REPLICASETS,
    STATEFULSETS,
    SUBNETS,
    VIPS,
    VIRTUALMACHINES,
    Resource,
)
from reconciler.views import Views
from reconciler.workqueue import WorkQueue
from store.core.cooldown import DEFAULT_COOLDOWN
from store.core.requests import Fence
from store.errors import FencedOut
from store.leases import Ipam
from store.subnets import Subnets
from store.vips import VipReservations

Key = tuple[str, str]
"""Work item: ``("pod", "ns/name")``, ``("subnet", name)``, ``("sts", "ns/name")``,
``("claim", "ns/name")``, ``("vm", "ns/name")``, ``("node", name)``,
``("ippool", name)``, ``("vip", name)``."""

WATCHED: tuple[Resource, ...] = (
    SUBNETS,
    IPPOOLS,
    VIPS,
    NADS,
    REPLICASETS,
    STATEFULSETS,
    IPAMCLAIMS,
    VIRTUALMACHINES,
    NODES,
    IPS,
    PODS,
)
OPTIONAL: frozenset[str] = frozenset({IPAMCLAIMS.plural, VIRTUALMACHINES.plural})
"""Resources whose CRD may be missing (KubeVirt's): absent reads as none
(:mod:`reconciler.kube.optional`)."""

OWN_WRITES = 10_000
"""Annotation patches remembered to skip their echo (a forgotten one costs one visit)."""
REFUSED_REMEMBERED = 10_000
"""Refused pods remembered for an early retry (beyond that, their backoff retries them)."""


@dataclass(frozen=True)
class Settings:
    identity: str
    """This replica's name in the election and on Events (pod name or host/pid)."""
    workers: int = 32
    """Pods processed in parallel (each pod's events stay serial)."""
    election_ttl: int = 10
    gc_interval: float = 60.0
    """Seconds between GC sweeps."""
    gc_grace: float = 60.0
    """An orphan must stay orphaned this long (two sweeps) before GC frees it."""
    address_cooldown: float = DEFAULT_COOLDOWN
    """Seconds a freed address waits before the next-free choice hands it out again
    (``store.core.cooldown``; fixed addresses and ip_pool entries never wait)."""
    node_not_ready_grace: float = 300.0
    """Seconds a node must be NotReady before a pod whose deletion is stuck on it is
    reported (``reconciler.core.stuck``); Kubernetes' own eviction waits 300 s too."""
    release_stuck_pods: bool = False
    """Release the addresses of such pods (opt-in: a partitioned node may still use them)."""
    status_interval: float = 5.0
    """Seconds between Subnet status / usage metric refreshes."""
    retry_base: float = 0.2
    """First backoff after a temporary failure (doubles, capped at 30 s)."""
    refusal_base: float = 5.0
    """First backoff after a refusal (bad input; doubles, capped at 5 min)."""
    watch_timeout: int = 40
    """Seconds each apiserver watch runs before the server ends it; a silent
    connection is noticed after this plus 15 s (see ``kube.informer``)."""
    keep_vm_ip: bool = True
    """Kube-OVN's keep-vm-ip: a virt-launcher pod's NICs keep their addresses
    for its VM (by name) across pod restarts, until the VM is gone."""


@dataclass
class Runtime:
    settings: Settings
    kube: KubeClient
    ipam: Ipam
    subnets: Subnets
    recorder: EventRecorder
    informers: dict[str, Informer]
    queue: WorkQueue[Key]
    index: AttachmentIndex = field(default_factory=AttachmentIndex)
    views: Views = field(default_factory=Views)
    """NADs, Subnets and IPPools as planning reads them (immutable snapshots)."""
    tombstones: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Deleted pods by ``ns/name``, waiting for the worker to release them."""
    first_seen: dict[str, float] = field(default_factory=dict)
    """Pod UID -> when the controller first saw it (allocation latency)."""
    refused: Bounded[str] = field(default_factory=lambda: Bounded(REFUSED_REMEMBERED))
    """Pods (``ns/name``) refused: retried when a NAD/Subnet/IPPool changes or an
    address is released. Bounded: the oldest are forgotten (their backoff retries
    them anyway), so a namespace full of bad pods cannot grow it without limit."""
    own_writes: BoundedMap[str, dict[str, str]] = field(
        default_factory=lambda: BoundedMap(OWN_WRITES)
    )
    """Pod (``ns/name``) -> the annotations this controller last patched onto it, so
    the watch's echo of that very write is not processed again."""
    stuck: dict[str, str] = field(default_factory=dict)
    """Pods (``ns/name``) stuck on a NotReady node and still holding addresses -> the node."""
    ip_written: dict[str, dict[str, Any]] = field(default_factory=dict)
    ip_objects_pending: set[str] = field(default_factory=set)
    """Pods (``ns/name``) allocated before the IP objects were listed: their IP
    objects are written when the list is in (a Pending pod may see no other event)."""
    ip_objects_lock: threading.Lock = field(default_factory=threading.Lock)
    """IP object specs this process wrote (see ``ipobjects.ensure_ip_object``)."""
    claim_refusals: BoundedMap[str, tuple[str, str]] = field(
        default_factory=lambda: BoundedMap(REFUSED_REMEMBERED)
    )
    """IPAMClaim (``ns/name``) -> (reason, message) of its NIC's latest refusal,
    for its status condition; dropped once it is allocated."""
    fence_value: Fence | None = None

    def informer(self, resource: Resource) -> Informer:
        return self.informers[resource.plural]

    @property
    def fence(self) -> Fence:
        """The fencing token; raises FencedOut when this replica does not lead."""
        fence = self.fence_value
        if fence is None:
            raise FencedOut("not the leader")
        return fence

    @property
    def leading(self) -> bool:
        return self.fence_value is not None

    def retry_refused(self) -> None:
        """Queue every refused pod again: something they may have waited for changed
        (a NAD, Subnet, IPPool or IPAMClaim, or an address was released)."""
        if self.leading:
            for key in self.refused:
                self.queue.add(("pod", key))

    @property
    def vips(self) -> VipReservations:
        """Vip reservations in the store (a thin view over ``ipam``)."""
        return VipReservations(self.ipam)
