"""The audit of IPPools and Vips: what the store and the cluster say about reserved addresses.

``vips`` (the store alone, and against the Vip objects when the apiserver
is read):

* a NIC borrowing a Vip whose reservation is missing, or whose addresses or
  MAC differ from the reservation's;
* a borrowing NIC without its binding key, a binding naming another NIC,
  or a binding whose NIC is gone;
* a reservation whose Vip object is gone (or is another object of that
  name), a Vip showing an address the store does not hold for it, a Vip
  whose status differs from its reservation.

``pools`` (needs the apiserver): each IPPool nicpool refuses (the same rule
the controller applies: ``core.overlaps``), and each address of a
namespace-bound IPPool held by a pod of a namespace the pool does not serve
(given by a fixed address, or held since before the pool existed).

With ``--namespace`` only that namespace's borrowing NICs and bindings, the
Vips of that namespace (``spec.namespace``) and the IPPools serving it are
compared: cluster-scoped objects of
other tenants are not that namespace's business.

Pure: two snapshots in, findings out.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from reconciler.core.ippools import IPPoolView, ippool_from_object, pool_offsets
from reconciler.core.overlaps import refused_pools, refused_subnets
from reconciler.core.subnets import SubnetView, subnet_from_object
from reconciler.ctl.cluster import ClusterSnapshot
from reconciler.ctl.snapshot import EtcdSnapshot
from store.core.identity import SubnetName
from store.core.vips import is_vip_ref, vip_ref
from store.errors import PermanentError

Finding = dict[str, Any]


def vips(etcd: EtcdSnapshot, cluster: ClusterSnapshot | None) -> Iterator[Finding]:
    scope = None if cluster is None else cluster.namespace
    yield from _borrowers(etcd, scope)
    yield from _bindings(etcd, scope)
    if cluster is not None:
        yield from _vip_objects(etcd, cluster)


def _borrowers(etcd: EtcdSnapshot, scope: str | None) -> Iterator[Finding]:
    keys = etcd.keys
    for ref, att in sorted(etcd.attachments.items()):
        if att.vip is None or scope not in (None, ref.pod.namespace):
            continue
        found: Finding = {"vip": att.vip, "nic": str(ref), "subnet": att.subnet}
        reservation = etcd.attachments.get(vip_ref(att.vip))
        if reservation is None:
            yield {**found, "problem": "borrows a Vip that has no reservation in the store"}
        elif (reservation.ip_csv(), reservation.mac) != (att.ip_csv(), att.mac):
            yield {
                **found,
                "problem": f"holds {att.ip_csv()} {att.mac}; the Vip reserves "
                f"{reservation.ip_csv()} {reservation.mac}",
            }
        binding = etcd.vip_bindings.get((att.subnet, att.vip))
        if binding != keys.attachment(ref):
            yield {
                **found,
                "problem": f"binding {'missing' if binding is None else 'names another NIC'}",
            }


def _bindings(etcd: EtcdSnapshot, scope: str | None) -> Iterator[Finding]:
    keys = etcd.keys
    for (subnet, vip), holder in sorted(etcd.vip_bindings.items()):
        ref = keys.attachment_ref(holder) if holder.startswith(keys.attachments) else None
        if scope not in (None, None if ref is None else ref.pod.namespace):
            continue
        att = etcd.attachments.get(ref) if ref is not None else None
        if att is None or att.vip != vip:
            yield {
                "vip": vip,
                "subnet": subnet,
                "problem": "binding names no NIC borrowing this Vip",
            }


def _vip_objects(etcd: EtcdSnapshot, cluster: ClusterSnapshot) -> Iterator[Finding]:
    scope = cluster.namespace
    objects = {
        name: obj
        for name, obj in cluster.vips.items()
        if scope is None or (obj.get("spec") or {}).get("namespace") == scope
    }
    for ref, reservation in sorted(etcd.attachments.items()):
        if not is_vip_ref(ref) or (scope is not None and ref.pod.name not in objects):
            continue
        obj = objects.get(ref.pod.name)
        uid = str((obj or {}).get("metadata", {}).get("uid", ""))
        if obj is None or uid != reservation.uid:
            yield {
                "vip": ref.pod.name,
                "ips": reservation.ip_csv(),
                "problem": "reservation of a Vip object that no longer exists",
            }
            continue
        status = obj.get("status") or {}
        shown = ",".join(a for a in (status.get("v4ip"), status.get("v6ip")) if a)
        if (shown, status.get("mac")) != (reservation.ip_csv(), reservation.mac):
            yield {
                "vip": ref.pod.name,
                "status": f"{shown} {status.get('mac')}",
                "store": f"{reservation.ip_csv()} {reservation.mac}",
                "problem": "the Vip's status differs from its reservation",
            }
    for name, obj in sorted(objects.items()):
        status = obj.get("status") or {}
        if (status.get("v4ip") or status.get("v6ip")) and vip_ref(name) not in etcd.attachments:
            yield {"vip": name, "problem": "the Vip shows an address the store does not reserve"}


def pools(etcd: EtcdSnapshot, cluster: ClusterSnapshot) -> Iterator[Finding]:
    views: dict[str, IPPoolView] = {}
    scope = cluster.namespace
    for name, (view, state) in sorted(pool_states(cluster).items()):
        if view is not None:
            views[name] = view
        ours = scope is None or (view is not None and scope in view.namespaces)
        if state.error is not None and ours:
            yield {"ippool": name, "reason": state.error.reason, "problem": str(state.error)}
    yield from _strangers(etcd, views, _usable_subnets(cluster), scope)


@dataclass(frozen=True)
class PoolState:
    """An IPPool as the controller judges it: usable, being deleted, or refused and why."""

    error: PermanentError | None = None
    deleting: bool = False

    @property
    def text(self) -> str:
        if self.error is not None:
            return self.error.reason
        return "Deleting" if self.deleting else "Ready"


def pool_states(cluster: ClusterSnapshot) -> dict[str, tuple[IPPoolView | None, PoolState]]:
    """Every IPPool object, parsed, with the controller's verdict (``core.overlaps``)."""
    views: dict[str, IPPoolView] = {}
    states: dict[str, tuple[IPPoolView | None, PoolState]] = {}
    for name, obj in cluster.ippool_objects.items():
        try:
            views[name] = ippool_from_object(
                name, obj.get("spec") or {}, obj.get("metadata"), obj.get("status")
            )
        except PermanentError as exc:
            states[name] = (None, PoolState(error=exc))
    refused = refused_pools(views, _usable_subnets(cluster))
    for name, view in views.items():
        states[name] = (view, PoolState(error=refused.get(name), deleting=view.deleting))
    return states


def _usable_subnets(cluster: ClusterSnapshot) -> dict[SubnetName, SubnetView]:
    subnets: dict[SubnetName, SubnetView] = {}
    for name, obj in cluster.subnet_objects.items():
        try:
            view = subnet_from_object(
                name, obj.get("spec") or {}, obj.get("metadata"), obj.get("status")
            )
        except PermanentError:
            continue  # an unusable Subnet is the controller's to report (Event, condition)
        subnets[view.name] = view
    refused = refused_subnets(subnets)
    return {k: v for k, v in subnets.items() if k not in refused}


def _strangers(
    etcd: EtcdSnapshot,
    views: dict[str, IPPoolView],
    subnets: dict[SubnetName, SubnetView],
    scope: str | None,
) -> Iterator[Finding]:
    """Addresses of namespace-bound pools held by pods of other namespaces."""
    for pool in views.values():
        subnet = subnets.get(SubnetName(pool.subnet))
        if not pool.namespaces or subnet is None:
            continue
        for att in etcd.attachments.values():
            if (
                att.subnet != pool.subnet
                or is_vip_ref(att.ref)
                or pool.serves(att.ref.pod.namespace)
                or scope not in (None, att.ref.pod.namespace)
            ):
                continue
            inside = [leased.ip for leased in att.ips if _in_pool(pool, subnet, leased.ip)]
            if inside:
                yield {
                    "ippool": pool.name,
                    "nic": str(att.ref),
                    "ips": inside,
                    "problem": f"held by a pod of namespace {att.ref.pod.namespace}, "
                    f"which the pool does not serve ({', '.join(pool.namespaces)})",
                }


def _in_pool(pool: IPPoolView, subnet: SubnetView, ip: str) -> bool:
    for layout in subnet.layouts:
        if layout.contains(ip):
            return layout.offset_of(ip) in pool_offsets(pool, layout)
    return False
