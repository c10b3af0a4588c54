"""Who commits and who waits: the threads of a subnet's group commit.

Many callers (the controller's workers) allocate in one subnet at once, and
its transactions go one at a time (each compares the chunks the previous one
wrote). A caller queues its requests as :class:`Slot` s; the first one finds
no commit running and commits everything queued (``store.leases``), the
others sleep. Whoever commits a slot wakes its :class:`Caller`, and when a
commit ends the caller of the oldest request queued meanwhile is handed the
next one (:func:`hand_over`). Each wake-up concerns the thread it wakes: no
commit wakes every waiter to find out which of them goes next. With 32
callers that herd cost more client CPU than the planning, and on a loaded
machine every thread woken while another holds the GIL costs a scheduler
round (py-spy: a quarter of the GIL-held time was spent inside
``Condition.notify``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from store.core.records import Attachment
from store.core.requests import AllocationRequest
from store.errors import PermanentError
from store.subnetcache import SubnetCache

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
        """Handed the subnet's next commit by the caller that made the last one."""

    def wake(self) -> None:
        """Something concerning this caller changed (set it before calling this)."""
        try:  # noqa: SIM105 (suppress() is a context manager on every wake-up)
            self._signal.release()
        except RuntimeError:
            pass  # a wake-up is already pending: one is enough

    def wait_until(self, ready: Callable[[], bool]) -> None:
        """Sleep until ``ready()``."""
        while not ready():
            # A wake-up after the look above released the lock: this returns at once.
            self._signal.acquire()


@dataclass(eq=False)
class Slot:
    """One queued request and, once committed by whichever caller, its result."""

    request: AllocationRequest
    caller: Caller
    result: Result | None = None
    error: BaseException | None = None
    done: bool = False

    def finish(self) -> None:
        self.done = True
        self.caller.wake()


@dataclass
class SubnetState:
    lock: threading.RLock = field(default_factory=threading.RLock)
    """Held while planning and committing (the cache, and one transaction at a time)."""
    cache: SubnetCache = field(default_factory=SubnetCache)
    turn: threading.Lock = field(default_factory=threading.Lock)
    """Guards ``pending`` and ``committing``."""
    committing: bool = False
    pending: list[Slot] = field(default_factory=list)


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

    try:
        caller.wait_until(ready)
    except BaseException:  # interrupted while queued (KeyboardInterrupt, SystemExit)
        withdraw(state, queued)
        with state.turn:
            led, caller.lead = caller.lead, False
        if led:  # handed the next commit on the way out: hand it on
            hand_over(state)
        raise
    with state.turn:
        led, caller.lead = caller.lead, False
    return led


def withdraw(state: SubnetState, slots: list[Slot]) -> None:
    """Take back those of ``slots`` still queued: their caller leaves on an exception.

    Left queued, one of them could be handed the next commit by
    :func:`hand_over`, and a caller that has gone would hold the subnet's
    commit for good: every later allocation in the subnet would wait forever.
    """
    with state.turn:
        leaving = {slot for slot in slots if not slot.done}
        if leaving:
            state.pending = [slot for slot in state.pending if slot not in leaving]


def hand_over(state: SubnetState) -> None:
    """After a commit: the caller of the oldest request queued meanwhile commits next."""
    with state.turn:
        waiting = next((slot for slot in state.pending if not slot.done), None)
        if waiting is None:
            state.committing = False
            return
        waiting.caller.lead = True
    waiting.caller.wake()
