"""The audit of addresses held for an owner (an IPAMClaim, a VM's NIC).

Several pods may hold one owner's addresses at once (a live migration's
source and target): that is the only sharing the store allows, and it is
allowed exactly when every attachment holding an address names the same
owner (:func:`legitimately_shared`). That alone would let a corrupt record
hide a duplicate, so the owner side is checked too (:func:`owner_records`):
the owner record lists each of those attachments as a holder (pod and UID),
with the same addresses and MAC, and every listed holder has its attachment;
the owner's leases and MAC index entry point at the owner record.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from reconciler.core.owners import owner_alive
from reconciler.ctl.cluster import ClusterSnapshot
from reconciler.ctl.snapshot import EtcdSnapshot
from store.core.identity import IPAMCLAIM, OwnerRef, SubnetName
from store.core.owners import Holder
from store.core.records import Attachment

Finding = dict[str, Any]


def legitimately_shared(holders: Sequence[Attachment]) -> bool:
    """One holder, or several holding for the same owner (never for a pod)."""
    owners = {att.owner for att in holders}
    return len(holders) <= 1 or (len(owners) == 1 and None not in owners)


def owned_lease(
    etcd: EtcdSnapshot, subnet: SubnetName, ip: str, owner: OwnerRef
) -> Iterator[Finding]:
    record = etcd.owners.get(owner)
    if record is None or record.subnet != subnet or ip not in {i.ip for i in record.ips}:
        yield {
            "subnet": subnet,
            "ip": ip,
            "owner": str(owner),
            "problem": "lease without an owner record holding this address",
        }


def owner_records(etcd: EtcdSnapshot) -> Iterator[Finding]:
    """Owned attachments against their owner records, and each record against the store."""
    for ref, att in sorted(etcd.attachments.items()):
        if att.owner is None:
            continue
        record = etcd.owners.get(att.owner)
        problem = None
        if record is None:
            problem = "attachment names an owner that has no record"
        elif Holder(ref, att.uid) not in record.holders:
            problem = "attachment is not among its owner's holders"
        elif (record.subnet, record.ips, record.mac) != (att.subnet, att.ips, att.mac):
            problem = f"attachment's addresses differ from its owner's ({record.ip_csv()})"
        if problem:
            yield {"owner": str(att.owner), "holder": str(ref), "problem": problem}
    keys = etcd.keys
    for owner, record in sorted(etcd.owners.items()):
        for holder in record.holders:
            held = etcd.attachments.get(holder.ref)
            if held is None or held.owner != owner or held.uid != holder.uid:
                yield {
                    "owner": str(owner),
                    "holder": str(holder.ref),
                    "problem": "holder listed without its attachment",
                }
        for leased in record.ips:
            lease = etcd.leases.get((record.subnet, leased.ip))
            if lease is None or lease.owner != owner:
                yield {
                    "owner": str(owner),
                    "subnet": record.subnet,
                    "ip": leased.ip,
                    "problem": "owner address without its lease",
                }
        if etcd.macs.get((record.subnet, record.mac)) != keys.owner(owner):
            yield {"owner": str(owner), "mac": record.mac, "problem": "MAC index missing"}


def gone_owners(etcd: EtcdSnapshot, cluster: ClusterSnapshot) -> Iterator[Finding]:
    """Owner records whose IPAMClaim or VM has ended (the controller's GC frees them)."""
    for owner, record in sorted(etcd.owners.items()):
        if cluster.namespace is not None and owner.namespace != cluster.namespace:
            continue
        key = f"{owner.namespace}/{owner.name}"
        alive = owner_alive(
            owner,
            record.uid,
            claim=cluster.claims.get(key),
            vm=cluster.vms.get(key),
            vmi=cluster.vmis.get(key),
        )
        if alive:
            continue
        what = "IPAMClaim" if owner.kind == IPAMCLAIM else "VirtualMachine (and its VMI)"
        yield {
            "owner": str(owner),
            "subnet": record.subnet,
            "ips": [leased.ip for leased in record.ips],
            "holders": [str(h.ref) for h in record.holders],
            "problem": f"{what} is gone",
        }
