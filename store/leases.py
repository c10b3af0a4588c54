"""Allocating and releasing addresses: fenced, coalesced etcd transactions.

``Ipam`` is what the controller (and nicpoolctl) call. The decisions are
made by the pure ``store.core.plan``; this module reads what the plan needs,
commits it as one transaction, and retries lost races with a fresh read.

Throughput comes from two things:

* **Caching.** The leader is normally the only writer, so it keeps the
  bitmap chunks and subnet specs it last wrote together with their
  mod_revisions and compares against those. A transaction that loses
  (another writer, a stale cache) drops the subnet's cache and re-reads.
* **Group commit** (``store.groupcommit``). Callers that arrive while a
  transaction for the same subnet is in flight queue up; when it lands, the
  caller of the oldest queued request is handed the next commit and commits
  everyone queued in one transaction (at most ``MAX_TXN_OPS`` ops and
  ``MAX_TXN_BYTES`` bytes, more transactions if needed). Only the callers a
  commit concerns are woken.

Planning batch k+1 while batch k's transaction is in flight (pipelining) was
built, measured and taken out again (see the history of ``store/pipeline.py``):
the planning is Python, and done in flight it competes for the GIL with the
thread waiting for k's answer, so at 32 callers the round trip grew by more
than the planning saved (allocations/s 10-18% lower than without it); at 4
callers the gain was within the machine's noise, a batch there still
carrying 2.5 requests.

A refusal computed from the cache (subnet exhausted, address held) is never
returned on its say alone: the subnet's cache is dropped and the batch
planned again from etcd first. A new leadership term starts with
:meth:`Ipam.forget_all`.

Addresses leased to an owner (IPAMClaim, VM NIC: :mod:`store.core.owners`)
are optimistic too: the first attempt assumes no owner record, and a lost
bet reads it for the retry, which joins instead. Releases, leaving and the
owner's release live in :mod:`store.releases`.
"""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence

from store import releases
from store.core.identity import AttachmentRef, OwnerRef, PodUID, Revision, SubnetName
from store.core.ops import (
    MAX_TXN_OPS,
    Compare,
    CreateRevisionIs,
    Get,
    KeyValue,
    ModRevisionIs,
    Op,
)
from store.core.owners import ExistingOwner, OwnerRecord, decode_owner
from store.core.plan import BatchPlan, Deferred, Existing
from store.core.records import Attachment, decode_attachment
from store.core.requests import UNFENCED, AllocationRequest, Fence, Fencing, Unfenced
from store.errors import (
    STATE_REFUSALS,
    Conflict,
    FencedOut,
    PartialAllocation,
    PermanentError,
    TemporaryError,
)
from store.etcd import EtcdClient
from store.groupcommit import (
    Caller,
    Result,
    Slot,
    SubnetState,
    hand_over,
    join_or_lead,
    withdraw,
)
from store.guard import guarded_txn
from store.inventory import Inventory
from store.retry import retrying
from store.subnetcache import PlanSource

__all__ = [
    "UNFENCED",
    "AllocationRequest",
    "Fence",
    "Fencing",
    "Ipam",
    "Result",
    "Unfenced",
]


class Ipam(Inventory):
    """Leases in etcd for one prefix. Thread safe; one instance per process."""

    def __init__(
        self,
        client: EtcdClient,
        prefix: str,
        *,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
        cooldown: float = 0.0,  # seconds a freed address waits (store.core.cooldown)
    ) -> None:
        super().__init__(client, prefix)
        self._plans = PlanSource(
            client, self.keys, rng=rng or random.Random(), clock=clock, cooldown=cooldown
        )
        self._states: dict[SubnetName, SubnetState] = defaultdict(SubnetState)
        self._states_lock = threading.Lock()

    # -- allocation ----------------------------------------------------------

    def allocate(self, requests: Sequence[AllocationRequest], *, fence: Fencing) -> list[Result]:
        """Attachments (or the permanent error refusing each), in request order.

        Requests of several subnets commit subnet by subnet. When one subnet
        fails temporarily after another committed, :class:`PartialAllocation`
        carries what did commit, so the caller can record it (and release or
        finish it): nothing committed is ever lost to the caller.
        """
        caller = Caller()
        slots = [Slot(request, caller) for request in requests]
        by_subnet: dict[SubnetName, list[Slot]] = defaultdict(list)
        for slot in slots:
            by_subnet[slot.request.subnet].append(slot)
        for subnet, queued in by_subnet.items():
            state = self.state(subnet)
            if join_or_lead(state, queued, caller):
                try:
                    with state.lock:
                        self._commit_pending(subnet, state, fence)
                finally:
                    withdraw(state, queued)  # none left, unless interrupted before committing
                    hand_over(state)
        assert all(slot.done for slot in slots), "a caller returned before its slots were done"
        failed = next((slot.error for slot in slots if slot.error is not None), None)
        if failed is not None:
            committed = [slot.result for slot in slots if isinstance(slot.result, Attachment)]
            if committed and isinstance(failed, TemporaryError):
                raise PartialAllocation(str(failed), committed=committed) from failed
            raise failed
        return [slot.result for slot in slots if slot.result is not None]

    def _commit_pending(self, subnet: SubnetName, state: SubnetState, fence: Fencing) -> None:
        with state.turn:
            batch, state.pending = state.pending, []
        known: dict[str, KeyValue | None] = {}

        try:
            for attempt in retrying("allocate", subject=subnet):
                with attempt:
                    self._commit_batch(
                        subnet, state, [s for s in batch if not s.done], fence, known
                    )
        except BaseException as exc:  # FencedOut, exhausted retries: every waiter learns it
            for slot in batch:
                if not slot.done:
                    if isinstance(exc, PermanentError):
                        slot.result = exc  # the subnet itself refuses (UnknownSubnet)
                    else:
                        slot.error = exc
                    slot.finish()
            if not isinstance(exc, Exception):
                raise

    def _commit_batch(
        self,
        subnet: SubnetName,
        state: SubnetState,
        slots: list[Slot],
        fence: Fencing,
        known: dict[str, KeyValue | None],
    ) -> None:
        """Plan and commit ``slots`` in as few transactions as the op cap allows.

        Optimistic: the first attempt assumes no attachment or MAC index
        exists for these requests (the common case) and reads nothing; the
        transaction compares that assumption, and if it was wrong its
        failure branch has read the truth into ``known`` for the retry. A
        request is never refused on that assumption alone: its attachment is
        read first, since the address "held by another pod" may be its own.
        """
        existing, mac_holders, owners = self._prepare(slots, known, fence)
        confirmed = False
        while slots:
            plan = self.new_plan(subnet, state, fence)
            planned: list[tuple[Slot, Result]] = []
            deferred: list[Slot] = []
            while slots and not plan.closed and plan.size() + 8 < MAX_TXN_OPS:
                slot = slots.pop(0)
                request = slot.request
                owner = owners.get(request.owner) if request.owner else None
                try:
                    result: Result = plan.add(
                        request, existing.get(request.ref), mac_holders, owner
                    )
                except Deferred:
                    deferred.append(slot)
                    continue
                except PermanentError as exc:
                    result = exc
                planned.append((slot, result))
            unverified = [
                key
                for slot, result in planned
                if isinstance(result, PermanentError)
                for key in self._records_of(slot.request)
                if key not in known
            ]
            stale = not confirmed and any(
                isinstance(result, STATE_REFUSALS) for _, result in planned
            )
            if unverified or stale:
                # Never refuse on the cache's say alone: another writer
                # (nicpoolctl, an earlier leader) may have freed the address.
                if stale:
                    state.cache.forget()
                    confirmed = True
                known.update(self._read(unverified))
                slots = [slot for slot, _ in planned] + deferred + slots
                existing, mac_holders, owners = self._prepare(slots, known, fence)
                continue
            try:
                revision = self.commit(state, plan, fence)
            except Conflict as exc:
                known.update(exc.observed)
                raise
            owners.update({o: ExistingOwner(r, revision) for o, r in plan.owners_written.items()})
            for slot, result in planned:
                if isinstance(result, Attachment):
                    existing[result.ref] = Existing(result, revision)
                slot.result = result
                slot.finish()
            slots = deferred + slots

    def commit(self, state: SubnetState, plan: BatchPlan, fence: Fencing) -> Revision:
        """Commit a plan; remember the chunks it wrote. Returns the commit's revision."""
        compares, ops = plan.finish()
        if not ops:
            return Revision(0)
        probes = [
            c.key
            for c in compares
            if (isinstance(c, CreateRevisionIs) and c.revision == 0)
            or (isinstance(c, ModRevisionIs) and c.key.startswith(self.keys.owners))
        ]  # what a lost bet must re-read: keys assumed absent, owner records joined
        revision = self.txn(state, compares, ops, fence, probes=probes)
        state.cache.remember(plan, revision)
        return revision

    def txn(
        self,
        state: SubnetState,
        compares: list[Compare],
        ops: list[Op],
        fence: Fencing,
        *,
        probes: Sequence[str] = (),
    ) -> Revision:
        """A guarded transaction; a failed one drops the subnet's cache."""
        try:
            return guarded_txn(self.client, compares, ops, fence, probes=probes)
        except (Conflict, FencedOut):
            state.cache.forget()
            raise

    def _prepare(
        self, slots: list[Slot], known: dict[str, KeyValue | None], fence: Fencing
    ) -> tuple[dict[AttachmentRef, Existing], dict[str, str], dict[OwnerRef, ExistingOwner]]:
        """What is known to exist, after clearing proven predecessors that live in other
        subnets or involve an owner (each in a transaction of its own)."""
        existing, mac_holders, owners = self._known_records(known)
        for slot in slots:
            found = existing.get(slot.request.ref)
            if releases.clear_predecessor(self, slot.request, found, fence):
                known[self.keys.attachment(slot.request.ref)] = None
                del existing[slot.request.ref]
        return existing, mac_holders, owners

    def _records_of(self, request: AllocationRequest) -> list[str]:
        """The keys to read before refusing ``request``: its attachment (the address
        "held" may be its own) and its owner's record (it may be the owner's)."""
        keys = [self.keys.attachment(request.ref)]
        return keys + ([self.keys.owner(request.owner)] if request.owner else [])

    def _read(self, keys: list[str]) -> dict[str, KeyValue | None]:
        """Several keys in as few round trips as the op cap allows."""
        found: dict[str, KeyValue | None] = {}
        for start in range(0, len(keys), MAX_TXN_OPS):
            chunk = keys[start : start + MAX_TXN_OPS]
            outcome = self.client.txn([], [Get(key) for key in chunk])
            found.update(zip(chunk, outcome.gets, strict=True))
        return found

    def _known_records(
        self, known: dict[str, KeyValue | None]
    ) -> tuple[dict[AttachmentRef, Existing], dict[str, str], dict[OwnerRef, ExistingOwner]]:
        """Existing attachments, MAC holders and owners among what a failed attempt read."""
        existing: dict[AttachmentRef, Existing] = {}
        mac_holders: dict[str, str] = {}
        owners: dict[OwnerRef, ExistingOwner] = {}
        for kv in known.values():
            if kv is None:
                continue
            if kv.key.startswith(self.keys.attachments):
                attachment = decode_attachment(kv.value)
                existing[attachment.ref] = Existing(attachment, kv.mod_revision)
            elif kv.key.startswith(self.keys.owners):
                record = decode_owner(kv.value)
                owners[record.owner] = ExistingOwner(record, kv.mod_revision)
            else:
                mac_holders[kv.key.rsplit("/", 1)[1]] = kv.value.decode()
        return existing, mac_holders, owners

    # -- release: see store.releases ---------------------------------------------

    def release(
        self,
        ref: AttachmentRef,
        *,
        fence: Fencing,
        uid: PodUID | None = None,
        unless_exists: Sequence[str] = (),
    ) -> Attachment | None:
        """Free a pod NIC's addresses, MAC and records.

        Returns what was released; None when there was nothing, or when
        ``uid`` is given and the attachment belongs to another pod UID (a
        successor of the same name that must keep its addresses). A NIC
        holding an owner's addresses only *leaves* (:meth:`leave`): nothing
        but the owner's end frees them (DESIGN.md, Owners). ``unless_exists``:
        keys whose existence means "not now" (a Vip's binding): None then.
        """
        return releases.release(self, ref, fence=fence, uid=uid, unless_exists=unless_exists)

    def leave(
        self, ref: AttachmentRef, *, fence: Fencing, uid: PodUID | None = None
    ) -> releases.Left | None:
        """A holder pod is gone: drop its attachment and holder entry (no bit freed)."""
        return releases.leave(self, ref, fence=fence, uid=uid)

    def release_owner(
        self, owner: OwnerRef, *, fence: Fencing, uid: str | None = None
    ) -> OwnerRecord | None:
        """The owner ended: free its addresses, records and holder attachments."""
        return releases.release_owner(self, owner, fence=fence, uid=uid)

    # -- the cache ----------------------------------------------------------------

    def forget_all(self) -> None:
        """Drop every cached spec, chunk and cursor: a new leadership term starts cold."""
        with self._states_lock:
            states = list(self._states.values())
        for state in states:
            with state.lock:
                state.cache.forget()

    def cached_subnets(self) -> set[SubnetName]:
        """Subnets whose spec or bitmap chunks are cached (for tests and debugging)."""
        with self._states_lock:
            return {name for name, st in self._states.items() if st.cache.holds_anything()}

    # -- helpers --------------------------------------------------------------

    def state(self, subnet: SubnetName) -> SubnetState:
        with self._states_lock:
            return self._states[subnet]

    def new_plan(self, subnet: SubnetName, state: SubnetState, fence: Fencing) -> BatchPlan:
        return self._plans.plan(subnet, state.cache, fence)
