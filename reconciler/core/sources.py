"""Where one NIC's address comes from: a Vip, a fixed address, a pool, or the next free one.

In Kube-OVN's order: a Vip (``<provider>.kubernetes.io/vip`` or
``ovn.kubernetes.io/vip``) wins; then ``ip_address`` (or the networks JSON
``ips``); then ``ip_pool`` (an address list: Deployment pods take the first
entry no other pod holds, a StatefulSet pod the entry at its ordinal; or an
IPPool's name); then the IPPools bound to the pod's namespace
(``spec.namespaces``) in that Subnet, by name; then the next free address
outside every IPPool of the Subnet (the store skips them).

Kube-OVN applies a namespace's IPPools only to the default network; nicpool
allocates only attachments, so it applies them to the attachment NICs whose
Subnet is the IPPool's (see reconciler/README.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from reconciler.core import annotations as ann
from reconciler.core.errors import BeingDeleted, FamilyMismatch, IPPoolDeleting, VipDeleting
from reconciler.core.ippools import (
    IPPoolView,
    candidates_of,
    lookup_pool,
    namespace_pools,
    pool_candidates,
)
from reconciler.core.subnets import SubnetView
from reconciler.core.vips import VipView
from reconciler.core.workloads import STATEFULSET
from store.errors import OutsideSubnet, PermanentError, PoolExhausted, VipSubnetMismatch

if TYPE_CHECKING:
    from reconciler.core.planning import PodView


@dataclass
class AddressSource:
    """Where one NIC's address comes from: a Vip, fixed, a pool, or the next free one."""

    subnet: SubnetView
    fixed: tuple[str, ...] = ()
    pool: tuple[tuple[str, ...], ...] = ()
    vip: str | None = None
    blocked: BeingDeleted | None = None

    def take_vip(self, vip: VipView) -> None:
        if vip.subnet != self.subnet.name:
            raise VipSubnetMismatch(
                f"Vip {vip.name} belongs to Subnet {vip.subnet}, but this attachment uses "
                f"Subnet {self.subnet.name}"
            )
        self.vip = vip.name
        if vip.deleting:
            self.blocked = self.blocked or VipDeleting(f"Vip {vip.name} is being deleted")

    def choose(
        self,
        pod: PodView,
        *,
        fixed: tuple[str, ...],
        fixed_key: str,
        pool_request: ann.PoolRequest,
        pkey: str,
        pools: Mapping[str, IPPoolView],
        refused_pools: Mapping[str, PermanentError],
    ) -> None:
        """A fixed address, a pool's candidates or the namespace's pools (none: next free)."""
        subnet = self.subnet
        if fixed:
            check_in_subnet(fixed, subnet, fixed_key)
            self.fixed = fixed
        elif pool_request.pool_name:
            ippool = lookup_pool(
                pool_request.pool_name,
                pools,
                subnet,
                namespace=pod.namespace,
                refused=refused_pools,
            )
            if ippool.deleting:
                self.blocked = self.blocked or IPPoolDeleting(
                    f"IPPool {ippool.name} is being deleted"
                )
            self.pool = pool_candidates(ippool, subnet)
            if not self.pool:
                raise PoolExhausted(
                    f"IPPool {ippool.name} has no address inside Subnet {subnet.name}"
                )
        elif pool_request.entries:
            self.pool = pool_for(pod, pool_request.entries, subnet, ann.key(pkey, ann.IP_POOL))
        else:
            bound = namespace_pools(pod.namespace, subnet, pools, refused_pools)
            if bound:
                self.pool = candidates_of(bound, subnet)
                if not self.pool:
                    names = ", ".join(p.name for p in bound)
                    raise PoolExhausted(
                        f"IPPools {names} of namespace {pod.namespace} have no address inside "
                        f"Subnet {subnet.name}"
                    )


def check_in_subnet(addresses: tuple[str, ...], subnet: SubnetView, what: str) -> None:
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


def pool_for(
    pod: PodView, entries: tuple[tuple[str, ...], ...], subnet: SubnetView, what: str
) -> tuple[tuple[str, ...], ...]:
    for entry in entries:
        check_in_subnet(entry, subnet, what)
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
