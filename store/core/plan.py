"""Planning one transaction's worth of allocations for one subnet.

``BatchPlan`` turns requests into the compares and ops of a single etcd
transaction, without doing any I/O itself: bitmap chunks come through a
``WorkingChunks`` whose loader the caller supplies, existing records are
handed in already read. Each request either becomes part of the plan (and
its ``Attachment`` is returned) or raises a ``PermanentError`` and leaves
the plan untouched, so one bad request never blocks the others of a batch.

What the transaction compares (``store.guard`` adds the fencing key): the
subnet spec's mod_revision, the mod_revision of every bitmap chunk it
changes, and that every new attachment and MAC index key does not exist
yet. If any of those moved, nothing is written and the caller re-reads.

A request with an ``owner`` (IPAMClaim, VM NIC) is planned by
:mod:`store.core.owners`: allocated like any other the first time, joined
(no bit touched) by every later holder.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from store.core import allocator, owners
from store.core.addressing import FamilyLayout
from store.core.bitmap import Chunk, WorkingChunks
from store.core.cooldown import CoolDown, record_op
from store.core.holders import holder_of_key, holder_text, require_proof
from store.core.identity import AttachmentRef, Mac, Offset, OwnerRef, Revision
from store.core.keys import Keys
from store.core.mac import parse_mac, random_mac
from store.core.ops import (
    MAX_RECORD_BYTES,
    MAX_TXN_BYTES,
    Compare,
    CreateRevisionIs,
    Delete,
    ModRevisionIs,
    Op,
    Put,
    grown_size,
)
from store.core.records import Attachment, Lease, LeasedIP, encode_attachment, encode_lease
from store.core.requests import AllocationRequest, Fence, Fencing
from store.core.subnetspec import SubnetSpec
from store.core.vips import returned_ops
from store.errors import (
    AddressInUse,
    ExcludedAddress,
    InvalidAddress,
    MacInUse,
    PermanentError,
    RecordTooLarge,
)


class Deferred(Exception):
    """The request writes a key this plan already writes (etcd refuses that in one
    transaction); plan it again in the next transaction."""


@dataclass(frozen=True)
class Existing:
    """An attachment already in etcd for the request's pod NIC."""

    attachment: Attachment
    mod_revision: Revision


@dataclass
class BatchPlan:
    spec: SubnetSpec
    spec_revision: Revision
    keys: Keys
    chunks: WorkingChunks
    cursors: dict[int, int]
    fence: Fencing
    now: float
    rng: random.Random
    holder_of: Callable[[str], AttachmentRef | OwnerRef | None]
    """Who holds an address (for a fixed address's error message), by reading its lease."""
    cooldown: float = 0.0
    """Seconds a freed address is skipped by the next-free choice (``store.core.cooldown``)."""
    compares: list[Compare] = field(default_factory=list)
    ops: list[Op] = field(default_factory=list)
    closed: bool = False
    """Set after a replacement: nothing else may join this transaction."""
    _refs: set[AttachmentRef] = field(default_factory=set)
    _in_batch: dict[str, AttachmentRef] = field(default_factory=dict)
    _macs: set[str] = field(default_factory=set)
    _moved_cursors: set[int] = field(default_factory=set)
    _freed: set[tuple[int, int]] = field(default_factory=set)  # chunks with new release times
    owners_written: dict[OwnerRef, owners.OwnerRecord] = field(default_factory=dict)
    """Owner records this plan writes (the caller learns them once committed)."""
    _sized: tuple[int, int] = (0, 0)  # ops counted by bytes(), and their bytes

    def size(self) -> int:
        """The larger of the compare and op counts once finished."""
        extra = len(self.chunks.dirty) + len(self._moved_cursors) + len(self._freed) + 3
        return max(len(self.compares), len(self.ops)) + extra

    def bytes(self) -> int:
        """Keys and values planned so far (chunks add 512 bytes each when finished)."""
        self._sized = grown_size(self._sized, self.ops)
        return self._sized[1] + len(self.chunks.dirty) * 600

    def add(
        self,
        request: AllocationRequest,
        existing: Existing | None,
        mac_holders: Mapping[str, str],
        owner: owners.ExistingOwner | None = None,
    ) -> Attachment:
        """Plan ``request``; raise a PermanentError (plan unchanged) when it cannot be met.

        An attachment of the same pod UID is returned as it is (allocation is
        idempotent). One left by an earlier pod of the same name is taken
        over when the request adopts it (StatefulSet retention), else freed
        in this same transaction and replaced; the caller releases one that
        lives in another subnet before planning. ``mac_holders`` maps MACs
        known to be taken in this subnet to the attachment key holding them.
        Every choice is made before anything is marked, so a refusal needs
        no rollback. ``owner`` is the request owner's record when it exists.
        """
        if existing is not None and existing.attachment.uid == request.uid:
            return existing.attachment
        if existing is not None:
            require_proof(request, existing.attachment)
        if existing is not None and existing.attachment.subnet != self.spec.name:
            raise ValueError(f"{request.ref}: release its attachment in another subnet first")
        if existing is not None and (
            request.owner or existing.attachment.owner or existing.attachment.vip
        ):
            # Never free an owner's (or a Vip's) bits for a successor, nor plan two owners.
            raise ValueError(f"{request.ref}: clear its predecessor's owned NIC first")
        size = request.estimated_bytes()
        if size > MAX_RECORD_BYTES:
            raise RecordTooLarge(
                f"{request.ref}: its record would take about {size} bytes, over the "
                f"{MAX_RECORD_BYTES}-byte limit (too many routes?)"
            )
        if request.ref in self._refs or (existing is not None and not request.adopt and self.ops):
            # etcd refuses a transaction that writes one key twice; a
            # replacement frees keys others might take, so it goes alone.
            raise Deferred(str(request.ref))
        if self.ops and self.bytes() + size > MAX_TXN_BYTES:
            raise Deferred(f"{request.ref}: the transaction is full")
        if request.owner is not None:
            attachment = owners.add_owned(self, request, owner, mac_holders)
        elif existing is not None and request.adopt:
            attachment = self._rebind(request, existing)
        else:
            attachment = self._allocate(request, existing, mac_holders)
            self.closed = existing is not None
        self._refs.add(request.ref)
        return attachment

    def release(self, attachment: Attachment, mod_revision: Revision) -> None:
        """Free an attachment's bits and delete its records, if it is still as read."""
        self._free(attachment)
        compare, deletes = release_ops(self.keys, attachment, mod_revision)
        self.compares.append(compare)
        self.ops += deletes

    def finish(self) -> tuple[list[Compare], list[Op]]:
        compares = list(self.compares)
        ops = list(self.ops)
        compares.append(ModRevisionIs(self.keys.spec(self.spec.name), self.spec_revision))
        for family, index in sorted(self.chunks.dirty):
            chunk, revision = self.chunks.touched[(family, index)]
            key = self.keys.chunk(self.spec.name, family, index)  # type: ignore[arg-type]
            compares.append(ModRevisionIs(key, revision))
            ops.append(Put(key, chunk.encode()))
            if (family, index) in self._freed:  # the chunk's release times, beside it
                key = self.keys.cooling(self.spec.name, family, index)  # type: ignore[arg-type]
                ops.append(record_op(key, chunk, now=self.now, cooldown=self.cooldown))
        for family in sorted(self._moved_cursors):
            cursor_key = self.keys.cursor(self.spec.name, family)  # type: ignore[arg-type]
            ops.append(Put(cursor_key, str(self.cursors[family]).encode()))
        for family in sorted({family for family, _ in self.chunks.dirty}):
            ops.append(Put(self.keys.generation(self.spec.name, family), b""))  # type: ignore[arg-type]
        return compares, ops

    # -- one request ------------------------------------------------------

    def _allocate(
        self, request: AllocationRequest, replacing: Existing | None, mac_holders: Mapping[str, str]
    ) -> Attachment:
        mac = self._choose_mac(request, mac_holders)
        if replacing is not None:
            self._free(replacing.attachment)
        try:
            offsets = self._choose_offsets(request)
        except PermanentError:
            if replacing is not None:
                self._unfree(replacing.attachment)
            raise
        ips = tuple(
            LeasedIP(lay.family, lay.address_at(offsets[lay.family]), lay.cidr, lay.gateway)
            for lay in self.spec.layouts
        )
        attachment = self.attachment(request, ips, mac)
        att_key = self.keys.attachment(request.ref)
        holder_key = self.keys.holder_key(request.ref, request.owner)
        mac_key = self.keys.mac(self.spec.name, mac)
        if replacing is None:
            self.compares.append(CreateRevisionIs(att_key, Revision(0)))
        else:
            self.compares.append(ModRevisionIs(att_key, replacing.mod_revision))
            self.ops += self._stale_deletes(replacing.attachment, attachment)
        if replacing is None or replacing.attachment.mac != mac:
            self.compares.append(CreateRevisionIs(mac_key, Revision(0)))
        self.ops += [Put(att_key, encode_attachment(attachment)), Put(mac_key, holder_key.encode())]
        self.ops += [self._lease_put(attachment, leased.ip, request.owner_uid) for leased in ips]
        for leased in ips:
            self._in_batch[leased.ip] = request.ref
        self._macs.add(mac)
        return attachment

    def _stale_deletes(self, old: Attachment, new: Attachment) -> list[Op]:
        """Records of the predecessor the new attachment does not overwrite."""
        kept = {leased.ip for leased in new.ips}
        deletes: list[Op] = [
            Delete(self.keys.lease(old.subnet, leased.ip))
            for leased in old.ips
            if leased.ip not in kept
        ]
        if old.mac != new.mac:
            deletes.append(Delete(self.keys.mac(old.subnet, old.mac)))
        return deletes

    def _free(self, attachment: Attachment) -> None:
        if attachment.vip is None:  # a Vip's reservation keeps its bits (store.core.vips)
            self.free(attachment.ips)

    def _unfree(self, attachment: Attachment) -> None:
        self.mark(attachment.ips, allocator.take_back)

    def free(self, ips: tuple[LeasedIP, ...]) -> None:
        """Give back the bits of ``ips``, stamped with the time for the cool-down."""
        self.mark(ips, lambda chunks, o: allocator.give_back(chunks, o, freed_at=self.now))

    def mark(
        self, ips: tuple[LeasedIP, ...], action: Callable[[allocator.ChunkSource, int], Chunk]
    ) -> None:
        """Take or give back the bits of ``ips`` (those the subnet still has)."""
        for leased in ips:
            layout = self.spec.layout(leased.family)
            if layout is None or not layout.contains(leased.ip):
                continue  # the subnet no longer has this family/CIDR: no bit to touch
            source = self.chunks.source(layout.family, for_write=True)
            chunk = action(source, layout.offset_of(leased.ip))
            self._freed.add((layout.family, chunk.index))  # its release times change

    def _rebind(self, request: AllocationRequest, existing: Existing) -> Attachment:
        """A new pod UID takes over the old attachment (StatefulSet retention)."""
        old = existing.attachment
        attachment = replace(
            old,
            uid=request.uid,
            interface=request.interface,
            routes=request.routes,
            default_route=request.default_route,
            workload=request.workload,
            fence=self.fence_revision(),
        )
        att_key = self.keys.attachment(request.ref)
        self.compares.append(ModRevisionIs(att_key, existing.mod_revision))
        self.ops.append(Put(att_key, encode_attachment(attachment)))
        self.ops += [self._lease_put(attachment, leased.ip) for leased in attachment.ips]
        return attachment

    def _choose_mac(self, request: AllocationRequest, mac_holders: Mapping[str, str]) -> Mac:
        if request.mac is not None:
            mac = parse_mac(request.mac)
            mac_holder = mac_holders.get(mac)
            if mac_holder == self.keys.holder_key(request.ref, request.owner):
                mac_holder = None  # the predecessor being replaced holds it
            if mac_holder is not None or mac in self._macs:
                holder = "another pod in this batch"
                if mac_holder is not None:
                    holder = holder_text(holder_of_key(self.keys, mac_holder), request.ref)
                raise MacInUse(f"MAC {mac} is already used in subnet {self.spec.name} by {holder}")
            return mac
        while True:
            mac = random_mac(self.rng)
            if mac not in self._macs:
                return mac

    def _choose_offsets(self, request: AllocationRequest) -> dict[int, Offset]:
        fixed = self._fixed_by_family(request.fixed_ips, asking=request.ref)
        if not fixed and request.pool:
            cooling = CoolDown(self.cooldown, self.now)
            fixed = allocator.first_free_entry(
                request.pool, self._fixed_by_family, self.chunks, cooling
            )
        chosen: dict[int, Offset] = {
            lay.family: fixed[lay.family] if lay.family in fixed else self._next_free(lay)
            for lay in self.spec.layouts
        }
        for family, offset in chosen.items():
            allocator.take(self.chunks.source(family, for_write=True), offset)
            if family not in fixed:
                self.cursors[family] = offset
                self._moved_cursors.add(family)
        return chosen

    def _fixed_by_family(
        self, addresses: tuple[str, ...], *, asking: AttachmentRef | None = None
    ) -> dict[int, Offset]:
        """Offsets of the given addresses, one per family, each checked free.

        ``asking`` (a fixed address request) gets the holder named when it is
        in the same namespace; pool candidates (``asking`` None) are checked
        without reading who holds them: a held entry is just skipped.
        """
        fixed: dict[int, Offset] = {}
        for address in addresses:
            layout = self.spec.family_of(address)
            if layout.family in fixed:
                raise InvalidAddress(f"two IPv{layout.family} addresses given: {addresses}")
            fixed[layout.family] = self._check_free(layout, address, asking)
        return fixed

    def _check_free(
        self, layout: FamilyLayout, address: str, asking: AttachmentRef | None
    ) -> Offset:
        offset = layout.offset_of(address)
        if offset in layout.reserved:
            what = "the gateway" if address == layout.gateway else "reserved or in excludeIps"
            raise ExcludedAddress(f"{address} is {what} in subnet {self.spec.name}")
        if not allocator.is_free(layout, self.chunks.source(layout.family), offset):
            holder = "another pod"
            if asking is not None:
                found = self._in_batch.get(address) or self.holder_of(address)
                holder = holder_text(found, asking)
            raise AddressInUse(f"{address} in subnet {self.spec.name} is held by {holder}")
        return offset

    def _next_free(self, layout: FamilyLayout) -> Offset:
        cursor, cooling = self.cursors.get(layout.family, -1), CoolDown(self.cooldown, self.now)
        search = layout.for_next_free  # IPPool addresses go only to pods that ask for them
        return allocator.choose_next(self.spec.name, search, self.chunks, cursor, cooling)

    def _lease_put(self, attachment: Attachment, ip: str, owner_uid: str = "") -> Put:
        owned = attachment.owner is not None
        lease = Lease(
            subnet=self.spec.name,
            ip=ip,
            owner=attachment.owner or attachment.ref,
            uid=owner_uid if owned else attachment.uid,
            mac=attachment.mac,
            interface=attachment.interface,
            workload=attachment.workload,
            created=attachment.created,
            fence=attachment.fence,
            provider=attachment.ref.qualified if owned else "",
        )
        return Put(self.keys.lease(self.spec.name, ip), encode_lease(lease))

    def attachment(
        self, request: AllocationRequest, ips: tuple[LeasedIP, ...], mac: Mac
    ) -> Attachment:
        """The record ``request`` gets with ``ips`` and ``mac``, written by this plan."""
        return Attachment(
            ref=request.ref,
            uid=request.uid,
            subnet=self.spec.name,
            interface=request.interface,
            ips=ips,
            mac=mac,
            routes=request.routes,
            default_route=request.default_route,
            workload=request.workload,
            mtu=self.spec.mtu,
            created=self.now,
            fence=self.fence_revision(),
            owner=request.owner,
        )

    def fence_revision(self) -> Revision:
        return self.fence.revision if isinstance(self.fence, Fence) else Revision(0)


def release_ops(
    keys: Keys, attachment: Attachment, mod_revision: Revision
) -> tuple[Compare, list[Op]]:
    """Deleting an attachment's records, guarded by its mod_revision (a NIC borrowing
    a Vip's address gives up only itself and its binding: ``store.core.vips``)."""
    att_key = keys.attachment(attachment.ref)
    if attachment.vip is not None:
        return ModRevisionIs(att_key, mod_revision), returned_ops(keys, attachment)
    deletes: list[Op] = [Delete(att_key), Delete(keys.mac(attachment.subnet, attachment.mac))]
    deletes += [Delete(keys.lease(attachment.subnet, leased.ip)) for leased in attachment.ips]
    return ModRevisionIs(att_key, mod_revision), deletes
