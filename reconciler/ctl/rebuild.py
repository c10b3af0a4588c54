"""Rebuilding the store from the pods' annotations, after etcd was lost.

Every pod nicpool allocated for carries, per NIC,
``<provider>.kubernetes.io/allocated: "true"`` with ``ip_address`` and
``mac_address`` (Kube-OVN's keys, written by the controller). Those are
exactly the inputs of a fixed-address request, so a rebuild is the
controller's own planning (:func:`reconciler.core.planning.plan_pod`) run
over the annotated pods, with the store asked for those very addresses and
MACs. Subnets are re-registered from the Subnet objects first.

What a rebuild refuses:

* **Conflicts**: two pod NICs claiming one address, or one MAC, in a
  subnet. Neither claim is written (picking a winner is the operator's
  call); all conflicts are reported, and ``--apply`` writes nothing at all
  unless ``--skip-conflicts`` says to write the rest.
* Claims the store refuses (an address now excluded, one another pod
  already holds in a partly surviving store): reported per NIC.

What it cannot restore: attachments retained for a StatefulSet pod that
was deleted and not yet recreated (no pod, no annotations); the
controller re-allocates the successor's address from its ``ip_pool`` or
fixed annotation as usual.

What it leaves to the controller: Vip reservations and the pod NICs that
borrow them. The controller reserves each Vip again at the address and MAC
its ``status`` shows, then lets the annotated pod borrow it again; the
rebuild lists those NICs as skipped, and writes no claim that could take a
Vip's address first.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Any

from reconciler.core import annotations as ann
from reconciler.core.ippools import IPPoolView, ippool_from_object
from reconciler.core.planning import NicPlan, World, plan_pod
from reconciler.core.subnets import SubnetView, subnet_from_object
from reconciler.core.vips import VipView, vip_from_object
from reconciler.ctl.cluster import ClusterSnapshot
from store.core.identity import AttachmentRef, SubnetName
from store.core.records import Attachment
from store.core.subnetspec import SubnetSpec
from store.errors import PermanentError
from store.etcd import EtcdClient
from store.leases import UNFENCED, AllocationRequest, Ipam
from store.subnets import Subnets


@dataclass(frozen=True)
class RebuildConflict:
    subnet: str
    kind: str
    """``address`` or ``mac``."""
    value: str
    claimants: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "subnet": self.subnet,
            "kind": self.kind,
            "value": self.value,
            "claimants": list(self.claimants),
        }


@dataclass
class RebuildPlan:
    subnets: list[SubnetSpec] = field(default_factory=list)
    claims: list[NicPlan] = field(default_factory=list)
    conflicts: list[RebuildConflict] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    """Pods/NICs annotated as allocated that cannot be rebuilt, and why."""

    def conflicting(self) -> set[str]:
        return {c for conflict in self.conflicts for c in conflict.claimants}

    def accepted(self) -> list[NicPlan]:
        refused = self.conflicting()
        return [nic for nic in self.claims if str(nic.ref) not in refused]


def plan_rebuild(cluster: ClusterSnapshot) -> RebuildPlan:
    plan = RebuildPlan()
    world = _world(cluster, plan)
    for ref, pod in sorted(cluster.pods.items()):
        allocated = _allocated(pod.annotations)
        if not allocated:
            continue
        pod_plan = plan_pod(pod, world)
        for error in pod_plan.errors:
            plan.skipped.append({"pod": str(ref), "reason": f"{error.reason}: {error}"})
        for nic in pod_plan.nics:
            if nic.ref.qualified not in allocated:
                continue  # not allocated yet: the controller will do it
            if nic.vip is not None:
                reason = f"borrows Vip {nic.vip}: the controller restores it from the Vip's status"
                plan.skipped.append(
                    {"pod": str(ref), "provider": nic.ref.qualified, "reason": reason}
                )
                continue
            if not nic.fixed_ips:
                reason = "annotated as allocated but has no ip_address"
                plan.skipped.append(
                    {"pod": str(ref), "provider": nic.ref.qualified, "reason": reason}
                )
                continue
            plan.claims.append(nic)
    plan.conflicts = _conflicts(plan.claims)
    return plan


def _world(cluster: ClusterSnapshot, plan: RebuildPlan) -> World:
    """What planning reads, from the objects as listed; the unusable ones noted as skipped."""
    views: dict[SubnetName, SubnetView] = {}
    for name, spec in sorted(cluster.subnets.items()):
        try:
            view = subnet_from_object(name, spec)
        except PermanentError as exc:
            plan.skipped.append({"subnet": name, "reason": f"Subnet refused: {exc}"})
            continue
        views[view.name] = view
        plan.subnets.append(view.spec)
    pools: dict[str, IPPoolView] = {}
    for name, spec in sorted(cluster.ippools.items()):
        try:
            pools[name] = ippool_from_object(name, spec)
        except PermanentError as exc:
            plan.skipped.append({"ippool": name, "reason": f"IPPool refused: {exc}"})
    vips: dict[str, VipView] = {}
    for name, obj in sorted(cluster.vips.items()):
        try:
            vips[name] = vip_from_object(obj)
        except PermanentError as exc:
            plan.skipped.append({"vip": name, "reason": f"Vip refused: {exc}"})
    return World(nads=cluster.nads, subnets=views, ippools=pools, vips=vips)


def _allocated(annotations: Any) -> set[str]:
    return ann.allocated_providers(annotations)


def _conflicts(claims: list[NicPlan]) -> list[RebuildConflict]:
    by_value: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for nic in claims:
        for ip in nic.fixed_ips:
            by_value[(nic.subnet, "address", ip)].append(str(nic.ref))
        if nic.mac is not None:
            by_value[(nic.subnet, "mac", nic.mac)].append(str(nic.ref))
    return [
        RebuildConflict(subnet, kind, value, tuple(sorted(claimants)))
        for (subnet, kind, value), claimants in sorted(by_value.items())
        if len(claimants) > 1
    ]


@dataclass(frozen=True)
class ClaimOutcome:
    ref: AttachmentRef
    status: str
    """``written``, ``present`` (already in the store, same pod) or ``refused``."""
    detail: str = ""

    def to_json(self) -> dict[str, str]:
        return {"nic": str(self.ref), "status": self.status, "detail": self.detail}


def apply_rebuild(client: EtcdClient, prefix: str, plan: RebuildPlan) -> list[ClaimOutcome]:
    """Register the subnets and allocate every accepted claim (unfenced admin writes).

    A claim the store already holds for the same pod UID is not sent again:
    it is reported ``present`` (same addresses) or ``refused`` (others).
    """
    accepted = plan.accepted()
    refused = _register_subnets(Subnets(client, prefix), plan, {nic.subnet for nic in accepted})
    outcomes = [
        ClaimOutcome(nic.ref, "refused", refused[nic.subnet])
        for nic in accepted
        if nic.subnet in refused
    ]
    ipam = Ipam(client, prefix)
    to_write: list[NicPlan] = []
    for nic in (nic for nic in accepted if nic.subnet not in refused):
        held = ipam.get(nic.ref)
        if held is not None and held.uid == nic.request.uid:
            outcomes.append(_outcome(nic, held, present=True))
        else:
            to_write.append(nic)
    results = ipam.allocate([_request(nic) for nic in to_write], fence=UNFENCED)
    return outcomes + [
        _outcome(nic, result, present=False) for nic, result in zip(to_write, results, strict=True)
    ]


def _register_subnets(subnets: Subnets, plan: RebuildPlan, used: set[SubnetName]) -> dict[str, str]:
    """Put the Subnets the claims use; returns the refused ones with the reason."""
    refused: dict[str, str] = {}
    for spec in plan.subnets:
        if spec.name not in used:
            continue
        try:
            subnets.put(spec, fence=UNFENCED)
        except PermanentError as exc:
            refused[spec.name] = f"Subnet {spec.name} not registered: {exc}"
    return refused


def _request(nic: NicPlan) -> AllocationRequest:
    """Exactly the annotated addresses: no pool choice, no adoption."""
    return replace(nic.request, pool=(), adopt=False)


def _outcome(nic: NicPlan, result: Attachment | PermanentError, *, present: bool) -> ClaimOutcome:
    if isinstance(result, PermanentError):
        return ClaimOutcome(nic.ref, "refused", f"{result.reason}: {result}")
    held = tuple(sorted(i.ip for i in result.ips))
    if held != tuple(sorted(nic.fixed_ips)):
        return ClaimOutcome(
            nic.ref, "refused", f"store already holds {','.join(held)} for this pod NIC"
        )
    if present:
        return ClaimOutcome(nic.ref, "present", "already in the store")
    return ClaimOutcome(nic.ref, "written", result.ip_csv())
