"""The audit: every way the store can disagree with itself or with the cluster.

Pure: it takes the two snapshots and returns findings as JSON-ready dicts,
one list per kind (DESIGN.md fixes the first five keys of ``--json``):

``duplicates``
    one address (or one MAC) of a subnet held by two attachments, unless
    both hold it for the same owner (an IPAMClaim's or a VM's NIC: a
    migration's source and target share it by design, and the owner record
    must list both as its holders, see :mod:`reconciler.ctl.ownaudit`);
``leases_without_bits``
    a lease whose bitmap bit is clear: the allocator may hand the address
    out again (the dangerous one);
``bits_without_leases``
    a set bit with no lease: the address leaks until repaired;
``annotations_disagree``
    a live pod's ``<provider>.kubernetes.io/*`` annotations say something
    else than the store, or claim an allocation the store does not hold;
``orphans``
    an attachment whose pod is gone (or replaced by a pod with another UID)
    and that no StatefulSet retains for a successor; an owner record whose
    IPAMClaim or VM is gone;
``records_disagree``
    the store's own indexes disagree: a lease without its attachment (or
    owner record), an attachment address without its lease, a MAC index
    entry that is missing or points elsewhere, an owner record and its
    holders' attachments out of step;
``ip_objects_disagree``
    a Kube-OVN IP object missing, different from the lease, or left behind;
``unreadable``
    a record nicpool cannot decode;
``pools``
    an IPPool nicpool refuses (overlapping an older one, outside its Subnet,
    no such Subnet), or an address of a namespace-bound IPPool held by a pod
    of a namespace the pool does not serve (:mod:`.reservations`);
``vips``
    a Vip's reservation, its borrower and its binding disagreeing, or the
    Vip object and the store disagreeing (:mod:`.reservations`).

A pod NIC that borrows a Vip's address (``store.core.vips``) holds no lease
or MAC index entry of its own: the Vip's reservation does. So it is left
out of the lease, duplicate and MAC checks and checked under ``vips``.

Without the apiserver (``--no-kube``) the three cluster kinds are not
checked, and the report says so (``"kube": false``).
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from reconciler.core import annotations as ann
from reconciler.core.workloads import STATEFULSET, retention_on_pod_deletion, statefulset_ordinal
from reconciler.ctl import ownaudit, reservations
from reconciler.ctl.cluster import ClusterSnapshot
from reconciler.ctl.snapshot import EtcdSnapshot
from reconciler.ipobjects import ip_object_name, owner_ip_name
from store.core.identity import OwnerRef
from store.core.records import Attachment
from store.core.vips import is_vip_ref

Finding = dict[str, Any]
KINDS = (
    "duplicates",
    "leases_without_bits",
    "bits_without_leases",
    "annotations_disagree",
    "orphans",
    "records_disagree",
    "ip_objects_disagree",
    "unreadable",
    "pools",
    "vips",
)
MANAGED_BY = "app.kubernetes.io/managed-by"


@dataclass
class AuditReport:
    findings: dict[str, list[Finding]] = field(default_factory=lambda: {k: [] for k in KINDS})
    kube: bool = True
    """False when the cluster side was not checked (``--no-kube``)."""

    @property
    def ok(self) -> bool:
        return not any(self.findings.values())

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "kube": self.kube, **self.findings}


def audit(etcd: EtcdSnapshot, cluster: ClusterSnapshot | None) -> AuditReport:
    report = AuditReport(kube=cluster is not None)
    found = report.findings
    found["duplicates"] = list(_duplicates(etcd))
    found["leases_without_bits"], found["bits_without_leases"] = _bitmaps(etcd)
    found["records_disagree"] = list(_records(etcd))
    found["unreadable"] = list(etcd.unreadable)
    found["vips"] = list(reservations.vips(etcd, cluster))
    if cluster is not None:
        found["pools"] = list(reservations.pools(etcd, cluster))
        if cluster.namespace is not None:
            etcd = _scoped(etcd, cluster.namespace)
        found["annotations_disagree"] = list(_annotations(etcd, cluster))
        found["orphans"] = list(_orphans(etcd, cluster))
        found["orphans"] += list(ownaudit.gone_owners(etcd, cluster))
        found["ip_objects_disagree"] = list(_ip_objects(etcd, cluster))
    return report


def _scoped(etcd: EtcdSnapshot, namespace: str) -> EtcdSnapshot:
    """The attachments of one namespace only, for the cluster-side checks."""
    attachments = {r: a for r, a in etcd.attachments.items() if r.pod.namespace == namespace}
    return replace(etcd, attachments=attachments)


# -- the store against itself ------------------------------------------------


def _holding(etcd: EtcdSnapshot) -> Iterator[Attachment]:
    """Attachments holding leases themselves or for their owner (not borrowing a Vip's)."""
    return (att for att in etcd.attachments.values() if att.vip is None)


def _duplicates(etcd: EtcdSnapshot) -> Iterator[Finding]:
    by_mac: dict[tuple[str, str], list[Attachment]] = defaultdict(list)
    for att in _holding(etcd):
        by_mac[(att.subnet, att.mac)].append(att)
    for (subnet, ip), holders in sorted(_by_address(etcd).items()):
        if not ownaudit.legitimately_shared(holders):
            yield {"subnet": subnet, "ip": ip, "holders": sorted(str(a.ref) for a in holders)}
    for (subnet, mac), holders in sorted(by_mac.items()):
        if not ownaudit.legitimately_shared(holders):
            yield {"subnet": subnet, "mac": mac, "holders": sorted(str(a.ref) for a in holders)}


def _by_address(etcd: EtcdSnapshot) -> dict[tuple[str, str], list[Attachment]]:
    found: dict[tuple[str, str], list[Attachment]] = defaultdict(list)
    for att in _holding(etcd):
        for leased in att.ips:
            found[(att.subnet, leased.ip)].append(att)
    return found


def _shared_addresses(etcd: EtcdSnapshot) -> set[tuple[str, str]]:
    """Addresses reported as duplicates (not an owner's holders sharing them)."""
    return {
        key
        for key, holders in _by_address(etcd).items()
        if not ownaudit.legitimately_shared(holders)
    }


def _bitmaps(etcd: EtcdSnapshot) -> tuple[list[Finding], list[Finding]]:
    without_bits: list[Finding] = []
    for (subnet, ip), lease in sorted(etcd.leases.items()):
        if ip not in etcd.bits.get(subnet, set()):
            problem = "bit clear" if subnet in etcd.specs else "subnet has no spec in the store"
            without_bits.append(
                {"subnet": subnet, "ip": ip, "owner": str(lease.owner), "problem": problem}
            )
    without_leases = [
        {"subnet": subnet, "ip": ip}
        for subnet, ips in sorted(etcd.bits.items())
        for ip in sorted(ips, key=_ip_sort)
        if (subnet, ip) not in etcd.leases
    ]
    return without_bits, without_leases


def _records(etcd: EtcdSnapshot) -> Iterator[Finding]:
    yield from _leases_vs_attachments(etcd)
    yield from _attachments_vs_leases(etcd)
    yield from _mac_index(etcd)
    yield from ownaudit.owner_records(etcd)


def _leases_vs_attachments(etcd: EtcdSnapshot) -> Iterator[Finding]:
    for (subnet, ip), lease in sorted(etcd.leases.items()):
        if isinstance(lease.owner, OwnerRef):
            yield from ownaudit.owned_lease(etcd, subnet, ip, lease.owner)
            continue
        att = etcd.attachments.get(lease.owner)
        if att is None or att.subnet != subnet or ip not in {i.ip for i in att.ips}:
            yield {
                "subnet": subnet,
                "ip": ip,
                "owner": str(lease.owner),
                "problem": "lease without an attachment holding this address",
            }


def _attachments_vs_leases(etcd: EtcdSnapshot) -> Iterator[Finding]:
    shared = _shared_addresses(etcd)
    for ref, att in sorted(etcd.attachments.items()):
        if att.vip is not None:
            continue  # the Vip's lease: see reservations.vips
        for leased in att.ips:
            if (att.subnet, leased.ip) in shared:
                continue  # reported once, as a duplicate
            held = etcd.leases.get((att.subnet, leased.ip))
            if held is None or held.owner != (att.owner or ref):
                yield {
                    "subnet": att.subnet,
                    "ip": leased.ip,
                    "owner": str(ref),
                    "problem": "attachment address without its lease"
                    if held is None
                    else f"lease names {held.owner} instead",
                }


def _mac_index(etcd: EtcdSnapshot) -> Iterator[Finding]:
    keys = etcd.keys
    for ref, att in sorted(etcd.attachments.items()):
        if att.vip is not None:
            continue  # the Vip's MAC index entry: see reservations.vips
        holder = etcd.macs.get((att.subnet, att.mac))
        if holder != keys.holder_key(ref, att.owner):
            yield {
                "subnet": att.subnet,
                "mac": att.mac,
                "owner": str(ref),
                "problem": f"MAC index -> {_rel(etcd, holder)}" if holder else "MAC index missing",
            }
    live = {keys.attachment(ref) for ref in etcd.attachments}
    live |= {keys.owner(owner) for owner in etcd.owners}
    for (subnet, mac), holder in sorted(etcd.macs.items()):
        if holder not in live:
            yield {
                "subnet": subnet,
                "mac": mac,
                "problem": f"MAC index -> {_rel(etcd, holder)}, which does not exist",
            }


def _rel(etcd: EtcdSnapshot, key: str) -> str:
    """A key without the prefix, so findings compare across prefixes (backup/restore)."""
    prefix = etcd.keys.prefix
    return key[len(prefix) :] if key.startswith(prefix) else key


# -- the store against the cluster ----------------------------------------------


def _annotations(etcd: EtcdSnapshot, cluster: ClusterSnapshot) -> Iterator[Finding]:
    for ref, att in sorted(etcd.attachments.items()):
        pod = cluster.pods.get(ref.pod)
        if pod is None or pod.uid != att.uid:
            continue  # not this pod's business: see orphans
        annotations = pod.annotations
        wanted = {
            ann.ALLOCATED: "true",
            ann.IP_ADDRESS: _ips_normal(att.ip_csv()),
            ann.MAC_ADDRESS: att.mac,
        }
        for suffix, store_value in wanted.items():
            raw = annotations.get(ann.key(ref.qualified, suffix))
            value = _normal(suffix, raw)
            if value != store_value:
                yield {
                    "pod": str(ref.pod),
                    "provider": ref.qualified,
                    "field": suffix,
                    "annotation": raw,
                    "store": store_value,
                }
    by_name = {(ref.pod, ref.qualified): att for ref, att in etcd.attachments.items()}
    for pod_ref, pod in sorted(cluster.pods.items()):
        for provider in _allocated_providers(pod.annotations):
            found = by_name.get((pod_ref, provider))
            if found is None or found.uid != pod.uid:
                yield {
                    "pod": str(pod_ref),
                    "provider": provider,
                    "field": ann.ALLOCATED,
                    "annotation": pod.annotations.get(ann.key(provider, ann.IP_ADDRESS)),
                    "store": None,
                    "problem": "pod is annotated as allocated; the store holds no lease for it",
                }


def _allocated_providers(annotations: dict[str, str] | Any) -> list[str]:
    return sorted(ann.allocated_providers(annotations))


def _orphans(etcd: EtcdSnapshot, cluster: ClusterSnapshot) -> Iterator[Finding]:
    for ref, att in sorted(etcd.attachments.items()):
        if is_vip_ref(ref):
            continue  # owned by a Vip object: see reservations.vips
        pod = cluster.pods.get(ref.pod)
        if pod is not None and pod.uid == att.uid:
            continue
        if _retained(att, cluster):
            continue
        yield {
            "pod": str(ref.pod),
            "provider": ref.qualified,
            "subnet": att.subnet,
            "ips": [leased.ip for leased in att.ips],
            "uid": att.uid,
            "problem": "pod is gone"
            if pod is None
            else f"pod was replaced (now uid {pod.uid}); no StatefulSet retains the address",
        }


def _retained(att: Attachment, cluster: ClusterSnapshot) -> bool:
    workload = att.workload
    if workload is None or workload.kind != STATEFULSET:
        return False
    state = cluster.statefulsets.get(f"{att.ref.pod.namespace}/{workload.name}")
    ordinal = statefulset_ordinal(att.ref.pod.name)
    return retention_on_pod_deletion(workload, ordinal, state).keep


def _ip_objects(etcd: EtcdSnapshot, cluster: ClusterSnapshot) -> Iterator[Finding]:
    names = {owner_ip_name(r.owner, r.provider) for r in etcd.owners.values()}
    checked: set[str] = set()
    for ref, att in sorted(etcd.attachments.items()):
        name = ip_object_name(att)
        if name in checked:
            continue  # another holder of the same owner's addresses
        checked.add(name)
        names.add(name)
        pod = cluster.pods.get(ref.pod)
        obj = cluster.ip_objects.get(name)
        if obj is None:
            if pod is not None and pod.uid == att.uid:
                yield {"name": name, "problem": "IP object missing for a live attachment"}
            continue
        spec = obj.get("spec") or {}
        wanted = {
            "ipAddress": _ips_normal(att.ip_csv()),
            "macAddress": att.mac,
            "subnet": att.subnet,
            "podName": att.owner.name if att.owner is not None else ref.pod.name,
            "namespace": ref.pod.namespace,
        }
        for key, store_value in wanted.items():
            raw = spec.get(key)
            value = _normal(ann.IP_ADDRESS if key == "ipAddress" else key, raw)
            if value != store_value:
                yield {"name": name, "field": key, "ip_object": raw, "store": store_value}
    for name, obj in sorted(cluster.ip_objects.items()):
        labels = (obj.get("metadata") or {}).get("labels") or {}
        if labels.get(MANAGED_BY) == "nicpool" and name not in names:
            yield {"name": name, "problem": "IP object without a lease in the store"}


# -- value normalisation --------------------------------------------------------


def _normal(suffix: str, raw: object) -> str | None:
    if not isinstance(raw, str):
        return None
    if suffix == ann.IP_ADDRESS:
        return _ips_normal(raw)
    if suffix in (ann.MAC_ADDRESS, "macAddress"):
        return raw.strip().lower().replace("-", ":")
    return raw.strip()


def _ips_normal(text: str) -> str:
    """``v4,v6`` with each address in canonical form, IPv4 first; unparsable kept as is."""
    try:
        found = [ipaddress.ip_address(p.strip()) for p in text.split(",") if p.strip()]
    except ValueError:
        return text.strip()
    return ",".join(str(ip) for ip in sorted(found, key=lambda ip: (ip.version, int(ip))))


def _ip_sort(text: str) -> tuple[int, int]:
    ip = ipaddress.ip_address(text)
    return ip.version, int(ip)
