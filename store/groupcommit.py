"""Who commits and who waits: the threads of a subnet's group commit.

Many callers (the controller's workers) allocate in one subnet at once, and
its transactions go one at a time (each compares the chunks the previous one
wrote). A caller queues its requests as :class:`Slot` s and sleeps; whoever
commits a slot wakes its :class:`Caller`. Each wake-up concerns the thread
it wakes: the callers whose requests were committed, or the one caller
handed the next commit. No commit wakes every waiter to find out which of
them goes next: with 32 callers that cost more CPU than the planning, and on
a loaded machine a thread woken while another holds the GIL costs a
scheduler round.

Two paths use this (``store.pipeline`` for the common case, the careful
group commit in ``store.leases`` for everything else); :class:`SubnetState`
holds both, and :meth:`SubnetState.alone` drains the pipeline for whoever
needs the subnet to itself.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from store.core.ops import KeyValue
from store.core.records import Attachment
from store.core.requests import AllocationRequest
from store.errors import PermanentError
from store.subnetcache import SubnetCache

if TYPE_CHECKING:
    from store.pipeline import Flight

Result = Attachment | PermanentError


class Caller:
    """One ``Ipam.allocate`` call's thread: woken only when something concerns it.

    The wake-up is a bare lock released by the waker (an ``Event`` is a Python
    condition around one: three times the work, all of it holding the GIL).
    """

    def __init__(self) -> None:
        self._signal = threading.Lock()
        self._signal.acquire()  # held: no wake-up pending
        self.lead = False
        """Handed the careful path's next commit by the caller that made the last one."""
        self.tasks: deque[Callable[[], None]] = deque()
        """Work handed to this thread while it waits: sending a pipelined batch that
        holds one of its requests (``store.pipeline``)."""

    def wake(self) -> None:
        """Something concerning this caller changed (set it before calling this)."""
        try:  # noqa: SIM105 (suppress() is a context manager on every wake-up)
            self._signal.release()
        except RuntimeError:
            pass  # a wake-up is already pending: one is enough

    def wait_until(self, ready: Callable[[], bool]) -> None:
        """Sleep until ``ready()``, doing any task handed over meanwhile."""
        while True:
            while self.tasks:
                self.tasks.popleft()()
            if ready():
                return
            # A wake-up after the look above released the lock: this returns at once.
            self._signal.acquire()


@dataclass(eq=False)
class Slot:
    """One queued request and, once committed by whichever caller, its result."""

    request: AllocationRequest
    caller: Caller
    result: Result | None = None
    error: BaseException | None = None
    retry: bool = False
    """The pipeline could not commit it: the careful path must."""
    observed: dict[str, KeyValue | None] = field(default_factory=dict)
    """What a failed pipelined transaction read of the keys it assumed absent."""
    done: bool = False

    def finish(self) -> None:
        self.done = True
        self.caller.wake()


@dataclass
class SubnetState:
    lock: threading.RLock = field(default_factory=threading.RLock)
    """Guards the cache and the pipeline's batches; held to plan, never across a
    pipelined transaction's round trip."""
    drained: threading.Condition = field(init=False)
    """Notified (on ``lock``) when a pipelined batch is sent or lands."""
    cache: SubnetCache = field(default_factory=SubnetCache)
    open: Flight | None = None
    """The pipelined batch being planned, on what the one in flight leaves."""
    inflight: Flight | None = None
    """The pipelined batch whose transaction is in flight."""
    flying: bool = False
    """A caller is sending the pipeline's batches: one is in flight, or the open one
    is handed to a caller to send. No one else sends while this is set."""
    room: list[Caller] = field(default_factory=list)
    """Callers that found the open batch full: woken when it is sealed."""
    exclusive: int = 0
    """Threads holding or awaiting the subnet alone: the pipeline plans nothing new."""
    turn: threading.Lock = field(default_factory=threading.Lock)
    """Guards ``pending`` and ``committing`` (the careful path's group commit)."""
    committing: bool = False
    pending: list[Slot] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.drained = threading.Condition(self.lock)

    @contextmanager
    def alone(self) -> Iterator[None]:
        """The subnet's lock, once no pipelined batch is in flight or being planned."""
        with self.lock:
            self.exclusive += 1
            try:
                while self.flying or self.inflight is not None or self.open is not None:
                    self.drained.wait()
                yield
            finally:
                self.exclusive -= 1


def join_or_lead(state: SubnetState, queued: list[Slot], caller: Caller) -> bool:
    """Queue ``queued``; True when this caller must commit the queue (group commit).

    While a commit is in flight, callers sleep until their requests are
    committed or until the next commit is handed to them (:func:`hand_over`).
    """
    with state.turn:
        state.pending.extend(queued)
        if not state.committing:
            state.committing = True
            return True

    def ready() -> bool:
        with state.turn:
            return caller.lead or all(slot.done for slot in queued)

    caller.wait_until(ready)
    with state.turn:
        led, caller.lead = caller.lead, False
    return led


def hand_over(state: SubnetState) -> None:
    """After a commit: the caller of the oldest request queued meanwhile commits next."""
    with state.turn:
        waiting = next((slot for slot in state.pending if not slot.done), None)
        if waiting is None:
            state.committing = False
            return
        waiting.caller.lead = True
    waiting.caller.wake()
