"""From a pod and the objects it names to one allocation plan per NIC.

Input: the pod (annotations, UID, owning workload and ordinal), the NADs,
Subnets and IPPools the controller has cached. Output: a :class:`Plan`
holding a :class:`NicPlan` per attachment NIC (the store's
``AllocationRequest`` plus what the annotations need), and every refusal
found, each a PermanentError. The controller allocates only when there is
no refusal: bad input never allocates (DESIGN.md).

Per NIC, in order: NAD -> provider (:mod:`reconciler.core.nadconfig`);
provider key (the provider, or ``<provider>.<interface>`` when one pod
attaches the same NAD more than once, so each NIC has its own lease and
annotations); Subnet (:mod:`reconciler.core.subnets`); address choice:
fixed ``ip_address`` (Kube-OVN v1.16's ``<nad>.<ns>.kubernetes.io/ip_address.<if>``
first, then the provider's key, then the networks JSON ``ips``) > ``ip_pool``
(Deployment: all entries in order, the store takes the first one free;
StatefulSet: the entry at the pod's ordinal; an IPPool's name: its
addresses) > next free; MAC from ``mac_address`` (or the JSON ``mac``).
Owner (:mod:`reconciler.core.claims`): the NIC's IPAMClaim (whose
``ipRequests`` are its fixed address), else with keep-vm-ip a
virt-launcher pod's VM, else the pod.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from reconciler.core import annotations as ann
from reconciler.core.claims import ClaimView, NicOwner, VmRef, nic_owner
from reconciler.core.errors import ClaimRefusal, DuplicateProvider, FamilyMismatch, NadNotFound
from reconciler.core.ippools import IPPoolView, lookup_pool, pool_candidates
from reconciler.core.nadconfig import NadNetwork, nad_provider
from reconciler.core.networks import NetworkSelection, parse_pod_networks
from reconciler.core.subnets import SubnetView, choose_subnet
from reconciler.core.workloads import STATEFULSET
from store.core.identity import AttachmentRef, Mac, OwnerRef, PodRef, PodUID, SubnetName
from store.core.records import Route, WorkloadRef
from store.core.requests import AllocationRequest
from store.errors import (
    OutsideSubnet,
    OwnerAddressMismatch,
    PermanentError,
    PoolExhausted,
    UnknownSubnet,
)

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
    ippools: Mapping[str, IPPoolView] = field(default_factory=dict)
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
    values = _Values(pod.annotations, pkey, base, sel if sel.interface_given or repeated else None)
    pool_request = values.pool()
    switch = values.logical_switch()
    if pool_request.pool_name and not switch:
        pool_subnet = world.ippools.get(pool_request.pool_name)
        switch = pool_subnet.subnet if pool_subnet is not None else None
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
    annotated, fixed_key = values.fixed_ips(sel)
    fixed = _fixed(annotated, owner)
    pool: tuple[tuple[str, ...], ...] = ()
    if fixed:
        _check_in_subnet(fixed, subnet, fixed_key or "the IPAMClaim's ipRequests")
    elif pool_request.pool_name:
        ippool = lookup_pool(pool_request.pool_name, world.ippools, subnet)
        pool = pool_candidates(ippool, subnet)
        if not pool:
            raise PoolExhausted(f"IPPool {ippool.name} has no address inside Subnet {subnet.name}")
    elif pool_request.entries:
        pool = _pool_for(pod, pool_request.entries, subnet, ann.key(pkey, ann.IP_POOL))
    routes, routes_given = values.routes()
    request = AllocationRequest(
        ref=ref,
        uid=pod.uid,
        subnet=subnet.name,
        interface=sel.interface,
        fixed_ips=fixed,
        pool=pool,
        mac=values.mac(sel),
        routes=_with_default_gateways(routes, sel.default_route),
        default_route=bool(sel.default_route) or sel.is_default_network,
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
    )


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


@dataclass(frozen=True)
class _Values:
    """Reads one NIC's per-provider annotations (the NIC's own key first, then the NAD's).

    ``per_interface``: the NIC's selection when the networks annotation names its
    interface (or attaches its NAD more than once): its fixed address and MAC are
    then read first from Kube-OVN v1.16's ``<nad>.<ns>.kubernetes.io/ip_address.<if>``
    and ``mac_address.<if>``, which win over the provider's keys as in Kube-OVN.
    """

    annotations: Mapping[str, str]
    pkey: str
    base: str
    per_interface: NetworkSelection | None = None

    def get(
        self, suffix: str, *, inherit: bool = False, by_interface: bool = False
    ) -> tuple[str, str] | None:
        keys = [ann.key(self.pkey, suffix)]
        sel = self.per_interface
        if by_interface and sel is not None:
            keys.insert(0, ann.interface_key(sel.name, sel.namespace, suffix, sel.interface))
        if inherit and self.pkey != self.base:
            keys.append(ann.key(self.base, suffix))
        for k in keys:
            value = self.annotations.get(k)
            if value is not None and value.strip():
                return k, value
        return None

    def logical_switch(self) -> str | None:
        found = self.get(ann.LOGICAL_SWITCH, inherit=True)
        return None if found is None else ann.parse_logical_switch(found[1], found[0])

    def pool(self) -> ann.PoolRequest:
        found = self.get(ann.IP_POOL)
        return ann.PoolRequest() if found is None else ann.parse_ip_pool(found[1], found[0])

    def fixed_ips(self, sel: NetworkSelection) -> tuple[tuple[str, ...], str]:
        """The fixed addresses asked for, and where they were read (for messages)."""
        found = self.get(ann.IP_ADDRESS, by_interface=True)
        if found is not None:
            return ann.parse_ip_set(found[1], found[0]), found[0]
        if sel.ips:
            what = f"{sel.nad_key} ips"
            return ann.parse_ip_set(",".join(sel.ips), what), what
        return (), ""

    def mac(self, sel: NetworkSelection) -> Mac | None:
        found = self.get(ann.MAC_ADDRESS, by_interface=True)
        if found is not None:
            return ann.parse_mac(found[1], found[0])
        return None if sel.mac is None else ann.parse_mac(sel.mac, f"{sel.nad_key} mac")

    def routes(self) -> tuple[tuple[Route, ...], str | None]:
        found = self.get(ann.ROUTES, inherit=True)
        if found is None:
            return (), None
        return ann.parse_routes(found[1], found[0]), found[1]


def _check_in_subnet(addresses: tuple[str, ...], subnet: SubnetView, what: str) -> None:
    families = tuple(ann.family_of(a) for a in addresses)
    if families != subnet.families:
        raise FamilyMismatch(
            f"{what}: {','.join(addresses)} gives IPv{'+IPv'.join(map(str, families))} but "
            f"Subnet {subnet.name} ({subnet.cidr_block}) needs one address per family "
            f"(IPv{'+IPv'.join(map(str, subnet.families))})"
        )
    for address, layout in zip(addresses, subnet.layouts, strict=True):
        if not layout.contains(address):
            raise OutsideSubnet(
                f"{what}: {address} is outside Subnet {subnet.name} ({layout.cidr})"
            )


def _pool_for(
    pod: PodView, entries: tuple[tuple[str, ...], ...], subnet: SubnetView, what: str
) -> tuple[tuple[str, ...], ...]:
    for entry in entries:
        _check_in_subnet(entry, subnet, what)
    if pod.workload is None or pod.workload.kind != STATEFULSET:
        return entries
    if pod.ordinal is None:
        raise PoolExhausted(f"{what}: StatefulSet pod {pod.name} has no ordinal in its name")
    if pod.ordinal >= len(entries):
        raise PoolExhausted(
            f"{what}: StatefulSet pod {pod.name} has ordinal {pod.ordinal} but ip_pool "
            f"lists {len(entries)} entries (one per ordinal)"
        )
    return (entries[pod.ordinal],)


def _with_default_gateways(
    routes: tuple[Route, ...], gateways: tuple[str, ...]
) -> tuple[Route, ...]:
    """Multus's ``default-route`` gateways become default routes unless routes give one."""
    if not gateways or any(not r.dst for r in routes):
        return routes
    return routes + tuple(Route(dst="", gw=gw) for gw in gateways)


__all__ = ["NicPlan", "Plan", "PodView", "UnknownSubnet", "World", "plan_pod"]
