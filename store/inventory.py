"""What the store holds, read back: attachments, leases and usage.

Read-only views for the controller, nicpoolctl and the audits. Writes go
through ``store.leases.Ipam`` (which extends this class) and
``store.subnets.Subnets``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from store.core.bitmap import Chunk
from store.core.identity import AttachmentRef, Family, OwnerRef, SubnetName
from store.core.keys import Keys
from store.core.owners import OwnerRecord, decode_owner
from store.core.records import Attachment, Lease, RecordError, decode_attachment, decode_lease
from store.core.subnetspec import SubnetSpec
from store.core.usage import FamilyOccupancy, FamilyUsage, family_occupancy, family_usage
from store.errors import UnknownSubnet
from store.etcd import EtcdClient

log = logging.getLogger("nicpool.inventory")


class Inventory:
    def __init__(self, client: EtcdClient, prefix: str) -> None:
        self.client = client
        self.keys = Keys(prefix)

    def get(self, ref: AttachmentRef) -> Attachment | None:
        kv, _ = self.client.get(self.keys.attachment(ref))
        return decode_attachment(kv.value) if kv else None

    def attachments(self, subnet: SubnetName | None = None) -> list[Attachment]:
        """Every readable attachment (of ``subnet``); an unreadable record is logged
        and left out, never failing the read (``nicpoolctl audit`` lists it)."""
        found = []
        for kv in self.client.iter_prefix(self.keys.attachments):
            try:
                found.append(decode_attachment(kv.value))
            except RecordError as exc:
                log.error("%s: %s; skipped (see nicpoolctl audit)", kv.key, exc)
        return [a for a in found if subnet is None or a.subnet == subnet]

    def owner(self, ref: OwnerRef) -> OwnerRecord | None:
        """The addresses an IPAMClaim or a VM NIC holds, and its holder pods."""
        kv, _ = self.client.get(self.keys.owner(ref))
        return decode_owner(kv.value) if kv else None

    def owners(self, prefix: str | None = None) -> list[OwnerRecord]:
        """Every readable owner record (under ``prefix``, e.g. one VM's); an unreadable
        one is logged and left out, like an attachment."""
        found = []
        for kv in self.client.iter_prefix(prefix or self.keys.owners):
            try:
                found.append(decode_owner(kv.value))
            except RecordError as exc:
                log.error("%s: %s; skipped (see nicpoolctl audit)", kv.key, exc)
        return found

    def leases(self, subnet: SubnetName) -> list[Lease]:
        return [decode_lease(kv.value) for kv in self.client.iter_prefix(self.keys.leases(subnet))]

    def usage(self, subnet: SubnetName) -> list[FamilyUsage]:
        """Per family: total, used, available and excluded addresses, from the bitmaps."""
        spec = self._spec(subnet)
        return [family_usage(lay, self._chunks(subnet, lay.family)) for lay in spec.layouts]

    def occupancy(self, subnet: SubnetName) -> list[FamilyOccupancy]:
        """Per family: the counts of :meth:`usage` and the leased runs (Subnet and IPPool
        status), from one read of the bitmaps."""
        spec = self._spec(subnet)
        return [family_occupancy(lay, self._chunks(subnet, lay.family)) for lay in spec.layouts]

    def _spec(self, subnet: SubnetName) -> SubnetSpec:
        kv, _ = self.client.get(self.keys.spec(subnet))
        if kv is None:
            raise UnknownSubnet(f"subnet {subnet} is not registered in the store")
        return SubnetSpec.from_json(kv.value)

    def _chunks(self, subnet: SubnetName, family: Family) -> Iterator[Chunk]:
        prefix = self.keys.bitmap(subnet, family)
        for kv in self.client.iter_prefix(prefix, page=64):
            yield Chunk.decode(int(kv.key[len(prefix) :], 16), kv.value)
