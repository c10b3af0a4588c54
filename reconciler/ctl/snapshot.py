"""Everything nicpool keeps in etcd under one prefix, read once and decoded.

The audit, ``usage``-style listings and ``lease show`` all work on this one
value instead of issuing their own reads, so what they report is
consistent with itself. The scan is paged (``EtcdClient.iter_prefix``), so
on a store that a controller is writing to, a record may change between
pages; the audit says so rather than hiding it (run it twice before acting
on a single finding, or with the controllers scaled down).

A record that cannot be decoded is not fatal: it is kept as an
``unreadable`` finding, because an audit that stops at the first corrupt
key is useless exactly when it is needed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from store.core.bitmap import Chunk
from store.core.identity import AttachmentRef, Family, Mac, OwnerRef, SubnetName
from store.core.keys import Keys
from store.core.ops import KeyValue
from store.core.owners import OwnerRecord, decode_owner
from store.core.records import Attachment, Lease, RecordError, decode_attachment, decode_lease
from store.core.subnetspec import SubnetSpec
from store.errors import PermanentError
from store.etcd import EtcdClient

LeaseKey = tuple[SubnetName, str]


@dataclass
class EtcdSnapshot:
    """The decoded store: subnets, bitmaps (as addresses), leases, attachments, MAC index."""

    keys: Keys
    specs: dict[SubnetName, SubnetSpec] = field(default_factory=dict)
    bits: dict[SubnetName, set[str]] = field(default_factory=dict)
    """Addresses whose bitmap bit is set, per subnet."""
    leases: dict[LeaseKey, Lease] = field(default_factory=dict)
    attachments: dict[AttachmentRef, Attachment] = field(default_factory=dict)
    macs: dict[tuple[SubnetName, Mac], str] = field(default_factory=dict)
    """MAC index: (subnet, MAC) -> the attachment (or owner record) key that holds it."""
    owners: dict[OwnerRef, OwnerRecord] = field(default_factory=dict)
    """Addresses of IPAMClaims and VM NICs, with their holder pods."""
    vip_bindings: dict[tuple[SubnetName, str], str] = field(default_factory=dict)
    """(subnet, Vip) -> the attachment key of the pod NIC borrowing it."""
    unreadable: list[dict[str, str]] = field(default_factory=list)
    """Keys (relative to the prefix) that could not be decoded, and why."""

    def leases_of(self, subnet: SubnetName) -> list[Lease]:
        return [lease for (name, _), lease in sorted(self.leases.items()) if name == subnet]


def read_snapshot(client: EtcdClient, prefix: str) -> EtcdSnapshot:
    """Scan ``prefix`` once and decode every record nicpool writes."""
    snapshot = EtcdSnapshot(Keys(prefix))
    chunks: list[tuple[SubnetName, Family, KeyValue]] = []
    for kv in client.iter_prefix(snapshot.keys.prefix):
        relative = kv.key[len(prefix) :]
        try:
            bitmap = _classify(snapshot, relative, kv)
        except (RecordError, PermanentError, ValueError, KeyError) as exc:
            snapshot.unreadable.append({"key": relative, "problem": str(exc)})
            continue
        if bitmap is not None:
            chunks.append((*bitmap, kv))
    for subnet, family, kv in chunks:
        _add_chunk(snapshot, subnet, family, kv)
    return snapshot


def _classify(
    snapshot: EtcdSnapshot, relative: str, kv: KeyValue
) -> tuple[SubnetName, Family] | None:
    """Decode one record into the snapshot; bitmap chunks are returned for later
    (they need their subnet's spec, which sorts after them)."""
    parts = relative.split("/")
    if parts[0] == "attachments":
        attachment = decode_attachment(kv.value)
        snapshot.attachments[attachment.ref] = attachment
    elif parts[0] == "owners":
        record = decode_owner(kv.value)
        snapshot.owners[record.owner] = record
    elif parts[0] == "subnets" and len(parts) >= 3:
        subnet, kind = SubnetName(parts[1]), parts[2]
        if kind == "spec":
            snapshot.specs[subnet] = SubnetSpec.from_json(kv.value)
        elif kind == "leases":
            lease = decode_lease(kv.value)
            snapshot.leases[(subnet, "/".join(parts[3:]))] = lease
        elif kind == "macs":
            snapshot.macs[(subnet, Mac(parts[3]))] = kv.value.decode()
        elif kind == "vips":
            snapshot.vip_bindings[(subnet, "/".join(parts[3:]))] = kv.value.decode()
        elif kind == "bitmap":
            family: Family = 4 if parts[3] == "4" else 6
            return subnet, family
    return None


def _add_chunk(snapshot: EtcdSnapshot, subnet: SubnetName, family: Family, kv: KeyValue) -> None:
    relative = kv.key[len(snapshot.keys.prefix) :]
    spec = snapshot.specs.get(subnet)
    layout = spec.layout(family) if spec is not None else None
    if layout is None:
        snapshot.unreadable.append(
            {"key": relative, "problem": f"bitmap chunk of subnet {subnet} IPv{family}, no spec"}
        )
        return
    base = snapshot.keys.bitmap(subnet, family)
    try:
        chunk = Chunk.decode(int(kv.key[len(base) :], 16), kv.value)
    except ValueError as exc:
        snapshot.unreadable.append({"key": relative, "problem": str(exc)})
        return
    found = snapshot.bits.setdefault(subnet, set())
    found.update(layout.address_at(offset) for offset in chunk.offsets())
