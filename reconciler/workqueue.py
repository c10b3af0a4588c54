"""One serial queue per key, parallel across keys (client-go's workqueue shape).

A key (``("pod", "ns/name")``, ``("subnet", name)``, ...) is never handed to
two workers at once: while it is being processed, new ``add`` calls only
mark it dirty, and ``done`` puts it back in line. Many adds while queued
collapse into one run, which is what a level-triggered reconciler wants (it
re-reads the latest state anyway). ``add_after`` schedules a retry; backoff
per key grows with its failures until ``forget``, and is capped the way
client-go's rate limiter caps it: the exponent stops growing once the cap is
reached, so a key refused for days never overflows a float.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)

_MAX_EXPONENT = 60
"""2**60 times any sensible base is far past any cap; 2.0**1024 would raise OverflowError."""


class WorkQueue(Generic[K]):
    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._cond = threading.Condition()
        self._queue: deque[K] = deque()
        self._urgent: deque[K] = deque()
        self._dirty: set[K] = set()
        self._processing: set[K] = set()
        self._delayed: list[tuple[float, int, K]] = []
        self._seq = itertools.count()
        self._failures: dict[K, int] = {}
        self._closed = False

    def add(self, key: K, *, front: bool = False) -> None:
        """Queue ``key``; ``front`` puts it in the urgent line (a new pod waiting for its
        first address), served first and in order, ahead of routine re-checks."""
        with self._cond:
            if self._closed or key in self._dirty:
                return
            self._dirty.add(key)
            if key not in self._processing:
                (self._urgent if front else self._queue).append(key)
                self._cond.notify()

    def add_after(self, key: K, delay: float) -> None:
        if delay <= 0:
            self.add(key)
            return
        with self._cond:
            heapq.heappush(self._delayed, (self._clock() + delay, next(self._seq), key))
            self._cond.notify()

    def backoff(self, key: K, *, base: float, cap: float) -> float:
        """Schedule a retry of ``key`` after base * 2^failures (capped); returns the delay."""
        with self._cond:
            failures = self._failures.get(key, 0)
            self._failures[key] = min(failures + 1, _MAX_EXPONENT)
        delay = float(min(base * (2.0 ** min(failures, _MAX_EXPONENT)), cap))
        self.add_after(key, delay)
        return delay

    def forget(self, key: K) -> None:
        with self._cond:
            self._failures.pop(key, None)

    def get(self, timeout: float | None = None) -> K | None:
        """The next key to process (mark it with :meth:`done`), or None on timeout/shutdown."""
        deadline = None if timeout is None else self._clock() + timeout
        with self._cond:
            while not self._closed:
                self._promote_due()
                if self._urgent or self._queue:
                    key = (self._urgent or self._queue).popleft()
                    self._dirty.discard(key)
                    self._processing.add(key)
                    return key
                wait = self._wait_time(deadline)
                if wait is not None and wait <= 0:
                    return None
                self._cond.wait(wait)
            return None

    def done(self, key: K) -> None:
        with self._cond:
            self._processing.discard(key)
            if key in self._dirty:
                self._queue.append(key)
                self._cond.notify()

    def depth(self) -> int:
        with self._cond:
            return len(self._queue) + len(self._urgent)

    def urgent(self) -> int:
        """Keys in the urgent line or being processed."""
        with self._cond:
            return len(self._urgent) + len(self._processing)

    def pending(self) -> int:
        """Queued, running and scheduled keys (zero means idle)."""
        with self._cond:
            waiting = len(self._queue) + len(self._urgent)
            return waiting + len(self._processing) + len(self._delayed)

    def clear(self) -> None:
        """Drop everything queued or scheduled (leadership lost)."""
        with self._cond:
            self._queue.clear()
            self._urgent.clear()
            self._dirty.clear()
            self._delayed.clear()
            self._failures.clear()

    def shutdown(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _promote_due(self) -> None:
        now = self._clock()
        while self._delayed and self._delayed[0][0] <= now:
            _, _, key = heapq.heappop(self._delayed)
            if key not in self._dirty:
                self._dirty.add(key)
                if key not in self._processing:
                    self._queue.append(key)

    def _wait_time(self, deadline: float | None) -> float | None:
        now = self._clock()
        waits = []
        if deadline is not None:
            waits.append(deadline - now)
        if self._delayed:
            waits.append(max(self._delayed[0][0] - now, 0.001))
        return min(waits) if waits else None
