"""Pipelined group commit: batch k+1 is planned while batch k's transaction is in flight.

A subnet's transactions go one at a time: each compares the bitmap chunks
the previous one wrote. What used to sit between two of them was the
planning of the next batch (about 30 us per allocation, half a millisecond
for the 16 a batch carries at 32 callers) and a hand-over between threads.
Here the planning is done while the previous transaction is in flight:

* A caller plans its requests at once into the subnet's *open* batch,
  built on what the batch in flight will leave: its chunks, whose
  mod_revision is ``UNSETTLED`` until it commits, and its cursors
  (``PlanSource.plan(after=...)``).
* The batch in flight is sent by one of its own callers, which blocks on the
  round trip. When it lands, that thread remembers what it wrote, records
  the commit revision on the open batch and hands the open batch to one of
  the open batch's callers (``Caller.tasks``), which seals it (every request
  planned until then joins: the callers just answered often make it),
  settles its chunk compares with that revision, and sends it. Only then
  are the landed batch's callers woken, so the next sender does not queue
  behind them for the GIL.

Every transaction still compares what its plan read: the spec, each chunk
it changes at the revision the previous transaction committed, the absence
of every new attachment and MAC key, and the fence. When one fails, the
batch planned on it is void too: both batches' callers fall back to the
careful path in ``store.leases`` (``Slot.retry``), which re-reads, confirms
refusals against etcd and retries. So does any request this path would
refuse or defer: the pipeline only ever commits, it never refuses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from store.core.identity import AttachmentRef, Revision, SubnetName
from store.core.ops import MAX_TXN_OPS, CreateRevisionIs
from store.core.plan import BatchPlan, Deferred
from store.core.records import Attachment
from store.core.requests import Fencing
from store.errors import Conflict, FencedOut, NicpoolError, PermanentError
from store.etcd import EtcdClient
from store.groupcommit import Caller, Slot, SubnetState
from store.guard import guarded_txn


@dataclass
class Flight:
    """One pipelined batch: its plan and its callers with their planned attachments."""

    plan: BatchPlan
    epoch: int
    """The cache's epoch when planning began: a later ``forget`` means this batch
    must not refill the cache with what it saw."""
    slots: list[tuple[Slot, Attachment]] = field(default_factory=list)
    refs: set[AttachmentRef] = field(default_factory=set)
    after: Revision | None = None
    """The revision the batch it was planned on committed at, once it has."""


FULL = object()
"""A request that does not fit in the open batch: it waits for the next one."""

PlanFactory = Callable[[SubnetName, SubnetState, Fencing, BatchPlan | None], BatchPlan]
"""(subnet, its state, fence, the plan in flight to build on) -> a new plan."""


class Pipeline:
    """Pipelined commits for every subnet of one ``Ipam``."""

    def __init__(self, client: EtcdClient, new_plan: PlanFactory) -> None:
        self.client = client
        self.new_plan = new_plan

    def submit(
        self,
        subnet: SubnetName,
        state: SubnetState,
        slots: list[Slot],
        fence: Fencing,
        caller: Caller,
    ) -> list[Slot]:
        """Plan ``slots`` into the open batch, and send it if no one is sending.

        Returns the slots this path does not take (it would refuse or defer
        them, or the subnet is held alone): the careful path commits those.
        """
        declined: list[Slot] = []
        todo = list(slots)
        while todo:
            full: Flight | None = None
            with state.lock:
                while todo:
                    planned = self._plan_one(subnet, state, todo[0], fence)
                    if planned is FULL:
                        full = state.open
                        state.room.append(caller)
                        break
                    if not planned:
                        declined.append(todo[0])
                    del todo[0]
                send = not state.flying and state.open is not None
                state.flying = state.flying or send
            if send:
                self._fly(state, caller)
            if full is not None:
                # Wait (doing what is handed over, which may be sending that very
                # batch) until the full batch is sealed, then plan into the next.
                caller.wait_until(_sealed(state, full))
        return declined

    def _plan_one(
        self, subnet: SubnetName, state: SubnetState, slot: Slot, fence: Fencing
    ) -> bool | object:
        """Plan one request into the open batch: True; False when the careful path must
        take it; ``FULL`` when the open batch has no room left for it."""
        ref = slot.request.ref
        if slot.request.owner is not None or state.exclusive:
            return False  # an owned NIC may have to read its owner's record first
        if any(ref in flight.refs for flight in (state.open, state.inflight) if flight):
            return False  # the same NIC again: its second request must read the first
        flight = state.open
        if flight is None:
            after = state.inflight.plan if state.inflight is not None else None
            try:
                plan = self.new_plan(subnet, state, fence, after)
            except NicpoolError:
                return False  # unknown subnet, etcd unreachable: the careful path says so
            flight = Flight(plan, state.cache.epoch)
        if flight.plan.fence != fence:
            return False
        try:
            if flight.plan.size() + 8 >= MAX_TXN_OPS:
                raise Deferred("the batch is full")
            # Optimistic, as the careful path's first attempt: no attachment or MAC
            # index exists yet for this NIC; the transaction compares that.
            attachment = flight.plan.add(slot.request, None, {})
        except Deferred:
            return FULL if flight.slots else False  # alone, it is too large for any batch
        except PermanentError:
            return False  # a refusal is never returned from here unconfirmed
        flight.slots.append((slot, attachment))
        flight.refs.add(ref)
        state.open = flight
        return True

    def _fly(self, state: SubnetState, caller: Caller) -> None:
        """Send the open batch and land it; again while the next one is this caller's."""
        while self._send(state, caller):
            pass

    def _send(self, state: SubnetState, caller: Caller) -> bool:
        """Seal, send and land the open batch; True when the next one is this caller's."""
        with state.lock:
            flight = state.open
            assert flight is not None and state.flying and state.inflight is None
            state.open, state.inflight = None, flight
            state.drained.notify_all()
            waiting, state.room = state.room, []
            try:
                if flight.after is not None:
                    flight.plan.chunks.settle(flight.after)
                compares, ops = flight.plan.finish()
            except BaseException as exc:
                unfinished: BaseException | None = exc
            else:
                unfinished = None
        for waiter in waiting:  # callers that found it full plan into the next one
            waiter.wake()
        if unfinished is not None:
            return self._land(state, flight, unfinished, caller)
        absent = [c.key for c in compares if isinstance(c, CreateRevisionIs) and c.revision == 0]
        outcome: Revision | BaseException
        try:
            outcome = guarded_txn(self.client, compares, ops, flight.plan.fence, probes=absent)
        except BaseException as exc:  # every caller of the batch learns it
            outcome = exc
        return self._land(state, flight, outcome, caller)

    def _land(
        self, state: SubnetState, flight: Flight, outcome: Revision | BaseException, caller: Caller
    ) -> bool:
        """A batch's answer: hand the next batch on first, then answer this one's callers.

        True when the next batch holds a request of ``caller``: it sends it
        itself, no thread woken.
        """
        void: Flight | None = None
        sender: Caller | None = None
        waiting: list[Caller] = []
        with state.lock:
            state.inflight = None
            if isinstance(outcome, BaseException):
                state.cache.forget()
                void, state.open = state.open, None
                waiting, state.room = state.room, []  # the full batch they waited on is void
            else:
                if flight.epoch == state.cache.epoch:
                    state.cache.remember(flight.plan, outcome)
                if state.open is not None:
                    state.open.after = outcome
                    callers = [slot.caller for slot, _ in state.open.slots]
                    sender = caller if caller in callers else callers[0]
            state.flying = sender is not None
            state.drained.notify_all()
        if sender is not None and sender is not caller:
            sender.tasks.append(lambda: self._fly(state, sender))
            sender.wake()
        _deliver(flight, outcome)
        if void is not None:
            _deliver(void, Conflict("the batch this one was planned on failed"))
        for waiter in waiting:
            waiter.wake()
        return sender is caller


def _sealed(state: SubnetState, flight: Flight) -> Callable[[], bool]:
    return lambda: state.open is not flight


def _deliver(flight: Flight, outcome: Revision | BaseException) -> None:
    for slot, attachment in flight.slots:
        if not isinstance(outcome, BaseException):
            slot.result = attachment
        elif isinstance(outcome, Exception) and not isinstance(outcome, FencedOut):
            # A lost race, etcd unreachable or refusing: the careful path re-reads,
            # retries, and decides what the caller is told.
            slot.retry = True
            if isinstance(outcome, Conflict):
                slot.observed = outcome.observed
        else:
            slot.error = outcome  # FencedOut: the caller must stop
        slot.finish()
