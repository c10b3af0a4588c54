"""From a pod and the objects it names to one allocation plan per NIC.

Input: the pod (annotations, UID, owning workload and ordinal), the NADs,
Subnets, IPPools, Vips and IPAMClaims the controller has cached
(:class:`World`). Output: a :class:`Plan` holding a :class:`NicPlan` per attachment NIC (the store's
``AllocationRequest`` plus what the annotations need), and every refusal
found, each a PermanentError. The controller allocates only when there is
no refusal: bad input never allocates (DESIGN.md).

Per NIC, in order: NAD -> provider (:mod:`reconciler.core.nadconfig`);
provider key (the provider, or ``<provider>.<interface>`` when one pod
attaches the same NAD more than once, so each NIC has its own lease and
annotations); Subnet (:mod:`reconciler.core.subnets`; a named Vip or
IPPool implies its Subnet); address source (:mod:`reconciler.core.sources`:
a Vip > fixed ``ip_address`` (Kube-OVN v1.16's
``<nad>.<ns>.kubernetes.io/ip_address.<if>`` first, then the provider's key,
then the networks JSON ``ips``) > ``ip_pool`` > the namespace's IPPools >
next free); MAC from ``mac_address`` (or the JSON ``mac``), the Vip's for a
Vip. Owner (:mod:`reconciler.core.claims`): the NIC's IPAMClaim (whose
``ipRequests`` are its fixed address), else with keep-vm-ip a
virt-launcher pod's VM, else the pod; a NIC taking a Vip is the pod's (the
Vip already outlives it).

A NIC whose Subnet, IPPool or Vip is being deleted is planned with
``blocked`` set rather than refused: a pod that already holds its address
keeps it (and its annotations), only a new allocation is refused.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from reconciler.core import annotations as ann
from reconciler.core.claims import ClaimView, NicOwner, VmRef, nic_owner
from reconciler.core.errors import (
    BeingDeleted,
    ClaimRefusal,
    DuplicateProvider,
    InvalidAnnotation,
    NadNotFound,
    SubnetDeleting,
    VipNoNic,
)
from reconciler.core.ippools import IPPoolView
from reconciler.core.nadconfig import NadNetwork, nad_provider
from reconciler.core.networks import NetworkSelection, parse_pod_networks
from reconciler.core.nicvalues import NicValues
from reconciler.core.sources import AddressSource
from reconciler.core.subnets import SubnetView, choose_subnet
from reconciler.core.vips import KUBE_OVN_KEY, VipView, parse_vip_name, usable_vip
from reconciler.core.workloads import STATEFULSET
from store.core.identity import AttachmentRef, Mac, OwnerRef, PodRef, PodUID, SubnetName
from store.core.records import Route, WorkloadRef
from store.core.requests import AllocationRequest
from store.errors import OwnerAddressMismatch, PermanentError, UnknownSubnet

NadConfigs = Mapping[str, str | None]
"""``"ns/name"`` -> the NAD's ``spec.config`` (None for an empty spec)."""


@dataclass(frozen=True)
class PodView:
    namespace: str
    name: str
    uid: PodUID
    annotations: Mapping[str, str]
    workload: WorkloadRef | None = None
    ordinal: int | None = None
    """StatefulSet pods only."""
    vm: VmRef | None = None
    """KubeVirt virt-launcher pods only: the VM the pod runs."""

    @property
    def ref(self) -> PodRef:
        return PodRef(self.namespace, self.name)


@dataclass(frozen=True)
class NicPlan:
    """One NIC to allocate: the store's request, plus what rendering the annotations needs."""

    request: AllocationRequest
    subnet_provider: str
    """The Subnet's ``spec.provider`` (ovn-type Subnets get ``logical_switch`` written)."""
    nad: str
    """``ns/name`` of the NAD the NIC comes from (for messages)."""
    routes_given: str | None = None
    """The user's ``routes`` annotation as written, echoed back unchanged."""
    provider_defaulted: bool = False
    claim: str | None = None
    """``"ns/name"`` of the NIC's IPAMClaim (its status reports this NIC's lease)."""
    vip: str | None = None
    """The Vip whose address this NIC borrows (``store.core.vips``)."""
    blocked: BeingDeleted | None = None
    """Why nothing new may be allocated for this NIC (its Subnet, IPPool or Vip is
    being deleted); a NIC that already holds its address keeps it."""

    @property
    def ref(self) -> AttachmentRef:
        return self.request.ref

    @property
    def subnet(self) -> SubnetName:
        return self.request.subnet

    @property
    def interface(self) -> str:
        return self.request.interface

    @property
    def fixed_ips(self) -> tuple[str, ...]:
        return self.request.fixed_ips

    @property
    def mac(self) -> Mac | None:
        return self.request.mac

    @property
    def adopt(self) -> bool:
        return self.request.adopt

    @property
    def owner(self) -> OwnerRef | None:
        return self.request.owner


@dataclass(frozen=True)
class Plan:
    nics: tuple[NicPlan, ...] = ()
    errors: tuple[PermanentError, ...] = ()
    ignored: tuple[str, ...] = ()
    """NADs the pod attaches that do not use kube-ovn IPAM (not nicpool's business)."""
    defaulted: tuple[str, ...] = field(default=())
    """NADs whose provider was defaulted (worth a warning Event)."""
    claim_errors: tuple[tuple[str, PermanentError], ...] = ()
    """Refusals of NICs that name an IPAMClaim, by claim (``"ns/name"``): its condition."""

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass(frozen=True)
class World:
    """The cached objects planning reads."""

    nads: NadConfigs
    subnets: Mapping[SubnetName, SubnetView]
    """Usable Subnets (refused ones, e.g. overlapping an older one, left out)."""
    ippools: Mapping[str, IPPoolView] = field(default_factory=dict)
    refused_pools: Mapping[str, PermanentError] = field(default_factory=dict)
    """IPPools that cannot be used, and why (``core.overlaps.refused_pools``)."""
    vips: Mapping[str, VipView] = field(default_factory=dict)
    refused_vips: Mapping[str, PermanentError] = field(default_factory=dict)
    claims: Mapping[str, ClaimView | ClaimRefusal] = field(default_factory=dict)
    """IPAMClaims by ``"ns/name"`` (the refusal for one whose spec cannot be read)."""
    vm_uids: Mapping[str, str] = field(default_factory=dict)
    """KubeVirt VirtualMachines' UIDs by ``"ns/name"``."""
    keep_vm_ip: bool = True
    """Kube-OVN's keep-vm-ip: a virt-launcher pod's NICs are its VM's."""


def plan_pod(pod: PodView, world: World) -> Plan:
    """Every NIC of ``pod`` nicpool must allocate, or why it cannot."""
    try:
        selections = parse_pod_networks(pod.annotations, pod.namespace)
    except PermanentError as exc:
        return Plan(errors=(exc,))
    counts = Counter(sel.nad_key for sel in selections)
    nics: list[NicPlan] = []
    errors: list[PermanentError] = []
    ignored: list[str] = []
    defaulted: list[str] = []
    claim_errors: list[tuple[str, PermanentError]] = []
    for sel in selections:
        try:
            network = _network(sel, world)
            if network is None:
                ignored.append(sel.nad_key)
                continue
            if network.defaulted:
                defaulted.append(sel.nad_key)
            nics.append(_plan_nic(pod, sel, network, counts[sel.nad_key] > 1, world))
        except PermanentError as exc:
            errors.append(exc)
            if sel.claim is not None:
                claim_errors.append((f"{pod.namespace}/{sel.claim}", exc))
    if nics:
        nics, refusals = assign_kube_ovn_vip(pod, nics, world)
        errors.extend(refusals)
    errors.extend(_collisions(nics))
    return Plan(tuple(nics), tuple(errors), tuple(ignored), tuple(defaulted), tuple(claim_errors))


def _network(sel: NetworkSelection, world: World) -> NadNetwork | None:
    if sel.nad_key not in world.nads:
        raise NadNotFound(f"NetworkAttachmentDefinition {sel.nad_key} does not exist")
    return nad_provider(sel.namespace, sel.name, world.nads[sel.nad_key])


def _collisions(nics: list[NicPlan]) -> list[PermanentError]:
    """Two NICs whose leases, or whose annotations, would share a key.

    Annotations spell a NIC by its qualified provider, so NAD ``a`` attached
    twice (``a.ns.net1``) and a NAD whose provider is literally ``a.ns.net1``
    would write the same annotation keys: refused, not guessed at.
    """
    seen: dict[str, NicPlan] = {}
    errors: list[PermanentError] = []
    for nic in nics:
        name = nic.ref.qualified
        if name in seen:
            errors.append(
                DuplicateProvider(
                    f"NADs {seen[name].nad} and {nic.nad} both use provider {name!r}; "
                    "one pod cannot hold two leases or two sets of annotations under one name"
                )
            )
        seen[name] = nic
    return errors


def _plan_nic(
    pod: PodView, sel: NetworkSelection, network: NadNetwork, repeated: bool, world: World
) -> NicPlan:
    base = network.provider
    ref = AttachmentRef(pod.ref, base, sel.interface if repeated else "")
    pkey = ref.qualified
    values = NicValues(
        pod.annotations, pkey, base, sel if sel.interface_given or repeated else None
    )
    vip_name = values.vip()
    pool_request = values.pool()
    switch = _switch(values, vip_name, pool_request, world)
    subnet = choose_subnet((pkey, base) if repeated else (base,), switch, world.subnets)
    owner = nic_owner(
        pod_namespace=pod.namespace,
        sel=sel,
        ref=ref,
        vm=pod.vm,
        claims=world.claims,
        nads=world.nads,
        vm_uids=world.vm_uids,
        keep_vm_ip=world.keep_vm_ip,
    )
    source = AddressSource(subnet=subnet)
    if subnet.deleting:
        source.blocked = SubnetDeleting(f"Subnet {subnet.name} is being deleted")
    if vip_name:
        if owner is not None and owner.claim is not None:
            raise InvalidAnnotation(f"{ref}: an IPAMClaim's NIC cannot also take Vip {vip_name}")
        owner = None  # the Vip already outlives the pod (keep-vm-ip included)
        source.take_vip(usable_vip(vip_name, world.vips, world.refused_vips, pod.namespace))
    else:
        annotated, fixed_key = values.fixed_ips(sel)
        source.choose(
            pod,
            fixed=_fixed(annotated, owner),
            fixed_key=fixed_key or "the IPAMClaim's ipRequests",
            pool_request=pool_request,
            pkey=pkey,
            pools=world.ippools,
            refused_pools=world.refused_pools,
        )
    routes, routes_given = values.routes()
    request = AllocationRequest(
        ref=ref,
        uid=pod.uid,
        subnet=subnet.name,
        interface=sel.interface,
        fixed_ips=source.fixed,
        pool=source.pool,
        mac=None if source.vip else values.mac(sel),
        routes=_with_default_gateways(routes, sel.default_route),
        default_route=values.default_route(bool(sel.default_route) or sel.is_default_network),
        workload=pod.workload,
        adopt=owner is None and pod.workload is not None and pod.workload.kind == STATEFULSET,
        owner=None if owner is None else owner.owner,
        owner_uid="" if owner is None else owner.uid,
    )
    return NicPlan(
        request=request,
        subnet_provider=subnet.provider,
        nad=sel.nad_key,
        routes_given=routes_given,
        provider_defaulted=network.defaulted,
        claim=None if owner is None or owner.claim is None else owner.claim.key,
        vip=source.vip,
        blocked=source.blocked,
    )


def _switch(values: NicValues, vip: str | None, pool: ann.PoolRequest, world: World) -> str | None:
    """``logical_switch``, else the Subnet a named Vip or IPPool belongs to."""
    switch = values.logical_switch()
    if switch:
        return switch
    if vip:
        found = world.vips.get(vip)
        return found.subnet if found is not None else None
    if pool.pool_name:
        owner = world.ippools.get(pool.pool_name)
        return owner.subnet if owner is not None else None
    return None


def _fixed(annotated: tuple[str, ...], owner: NicOwner | None) -> tuple[str, ...]:
    """The NIC's fixed addresses: its claim's ``ipRequests``, which an annotation
    (``ip_address``, the networks JSON ``ips``) may repeat but not contradict."""
    claim = None if owner is None else owner.claim
    if claim is None or not claim.ip_requests:
        return annotated
    if annotated and set(annotated) != set(claim.ip_requests):
        raise OwnerAddressMismatch(
            f"the pod asks for {','.join(annotated)} but its IPAMClaim {claim.key} "
            f"asks for {','.join(claim.ip_requests)}"
        )
    return claim.ip_requests


def assign_kube_ovn_vip(
    pod: PodView, nics: list[NicPlan], world: World
) -> tuple[list[NicPlan], list[PermanentError]]:
    """``ovn.kubernetes.io/vip: <name>`` goes to the first NIC in the Vip's Subnet."""
    raw = pod.annotations.get(KUBE_OVN_KEY, "").strip()
    if not raw or any(nic.vip for nic in nics):
        return nics, []
    try:
        name = parse_vip_name(raw, KUBE_OVN_KEY)
        vip = usable_vip(name, world.vips, world.refused_vips, pod.namespace)
        index = next((i for i, nic in enumerate(nics) if nic.subnet == vip.subnet), None)
        if index is None:
            raise VipNoNic(
                f"{KUBE_OVN_KEY}: Vip {name} belongs to Subnet {vip.subnet}, which none of "
                "this pod's attachments uses"
            )
        if nics[index].claim is not None:
            raise InvalidAnnotation(f"{KUBE_OVN_KEY}: an IPAMClaim's NIC cannot take Vip {name}")
    except PermanentError as exc:
        return nics, [exc]
    source = AddressSource(world.subnets[SubnetName(vip.subnet)], blocked=nics[index].blocked)
    source.take_vip(vip)
    request = replace(
        nics[index].request,
        fixed_ips=(),
        pool=(),
        mac=None,
        owner=None,
        owner_uid="",
        adopt=_statefulset(nics[index].request),
    )
    taken = replace(nics[index], request=request, vip=name, blocked=source.blocked)
    return [*nics[:index], taken, *nics[index + 1 :]], []


def _statefulset(request: AllocationRequest) -> bool:
    return request.workload is not None and request.workload.kind == STATEFULSET


def _with_default_gateways(
    routes: tuple[Route, ...], gateways: tuple[str, ...]
) -> tuple[Route, ...]:
    """Multus's ``default-route`` gateways become default routes unless routes give one."""
    if not gateways or any(not r.dst for r in routes):
        return routes
    return routes + tuple(Route(dst="", gw=gw) for gw in gateways)


__all__ = ["NicPlan", "Plan", "PodView", "UnknownSubnet", "World", "plan_pod"]
