"""Leader election on etcd leases, with the fencing token every write carries.

Each replica grants itself an etcd lease of ``ttl`` seconds and creates the
key ``<prefix>election/<lease-id>`` under it. The replica whose key has the
lowest create_revision leads; the others each watch the key just ahead of
theirs, so a leader's departure wakes exactly one successor.

The leader's fencing token is ``Fence(key, create_revision)``. When its
lease lapses etcd deletes the key, so every later transaction of the old
leader fails its fence compare (``store.guard``): a process paused past its
TTL cannot write when it wakes, whatever it believes.

The clients keep no lease alive by themselves, so a thread here refreshes it
every ``ttl / 3`` seconds. Leadership is considered lost locally once a
whole TTL has passed since the last refresh that was *sent* and answered:
the server's expiry can only be later than that, so the replica stops
acting before another can start.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from store.core.identity import Revision
from store.core.keys import Keys
from store.core.ops import CreateRevisionIs, KeyValue, Put
from store.core.requests import Fence
from store.errors import NicpoolError, TemporaryError
from store.etcd import EtcdClient

log = logging.getLogger("nicpool.election")


class Election:
    def __init__(
        self,
        client: EtcdClient,
        prefix: str,
        *,
        identity: str,
        ttl: int = 10,
        on_lost: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.keys = Keys(prefix)
        self.identity = identity
        self.ttl = ttl
        self.on_lost = on_lost
        self._clock = clock
        self._lease_id: int | None = None
        self._key: str | None = None
        self._fence: Fence | None = None
        self._alive_until = 0.0
        self._stop = threading.Event()
        self._keeper: threading.Thread | None = None
        self._lost_reported = False

    # -- campaigning -----------------------------------------------------

    def campaign(self, *, timeout: float | None = None) -> Fence:
        """Block until this replica leads (or ``timeout``); returns its fencing token."""
        deadline = None if timeout is None else self._clock() + timeout
        if self._key is None or not self._alive():
            self._join()
        assert self._key is not None
        while True:
            try:
                candidates = self._candidates()
            except TemporaryError as exc:
                # etcd went down between the watch's end and this read: as a broken watch.
                log.info("%s: reading the line failed (%s); waiting for etcd", self.identity, exc)
                self._wait_for_etcd(deadline)
                if deadline is not None and self._clock() >= deadline:
                    raise self._timed_out(timeout) from exc
                continue
            ours = next((kv for kv in candidates if kv.key == self._key), None)
            if ours is None:
                # Our lease lapsed while we waited: join again with a new one.
                self._join()
                continue
            ahead = [kv for kv in candidates if kv.create_revision < ours.create_revision]
            if not ahead:
                self._fence = Fence(ours.key, ours.create_revision)
                log.info("%s leads (fence %s@%d)", self.identity, ours.key, ours.create_revision)
                return self._fence
            wait = float(self.ttl) if deadline is None else deadline - self._clock()
            if wait <= 0:
                raise self._timed_out(timeout)
            predecessor = ahead[-1]
            try:
                self.client.watch_key(
                    predecessor.key, start_revision=predecessor.mod_revision + 1, timeout=wait
                )
            except TemporaryError as exc:
                # etcd restarted under the watch: look again once it answers.
                log.info(
                    "%s: watch on %s broke (%s); re-reading", self.identity, predecessor.key, exc
                )
                self._wait_for_etcd(deadline)

    def _timed_out(self, timeout: float | None) -> TimeoutError:
        return TimeoutError(f"{self.identity} did not become leader in {timeout}s")

    def _wait_for_etcd(self, deadline: float | None) -> None:
        """Sleep until etcd answers again (or the campaign's deadline passes)."""
        while deadline is None or self._clock() < deadline:
            time.sleep(0.2)
            try:
                self._candidates()
                return
            except TemporaryError:
                continue

    def is_leader(self) -> bool:
        return self._fence is not None and self._alive()

    @property
    def fence(self) -> Fence | None:
        return self._fence if self.is_leader() else None

    def leader(self) -> str | None:
        """The identity of the current leader, as any replica (or nicpoolctl) sees it."""
        candidates = self._candidates()
        return candidates[0].value.decode() if candidates else None

    def resign(self) -> None:
        """Step down and let the next replica lead at once (no TTL wait)."""
        self._stop.set()
        lease_id, self._lease_id = self._lease_id, None
        self._fence = None
        self._key = None
        if lease_id is not None:
            try:
                self.client.revoke_lease(lease_id)
            except TemporaryError as exc:
                log.warning("resign: could not revoke lease (%s); it expires in %ss", exc, self.ttl)
        if self._keeper is not None:
            self._keeper.join(timeout=self.ttl)

    # -- internals ---------------------------------------------------------

    def _join(self) -> None:
        self._stop.set()
        if self._keeper is not None:
            self._keeper.join(timeout=self.ttl)
        self._stop = threading.Event()
        sent = self._clock()
        lease_id = self.client.grant_lease(self.ttl)
        key = f"{self.keys.election}{lease_id:016x}"
        self.client.txn(
            [CreateRevisionIs(key, Revision(0))], [Put(key, self.identity.encode(), lease=lease_id)]
        )
        self._lease_id, self._key, self._fence = lease_id, key, None
        self._alive_until = sent + self.ttl
        self._lost_reported = False
        self._keeper = threading.Thread(
            target=self._keep_alive, args=(lease_id, self._stop), daemon=True, name="lease-keeper"
        )
        self._keeper.start()

    def _candidates(self) -> list[KeyValue]:
        kvs, _ = self.client.get_prefix(self.keys.election)
        return sorted(kvs, key=lambda kv: kv.create_revision)

    def _alive(self) -> bool:
        return self._clock() < self._alive_until

    def _keep_alive(self, lease_id: int, stop: threading.Event) -> None:
        interval = max(self.ttl / 3.0, 0.2)
        while not stop.wait(self._next_wait(interval)):
            sent = self._clock()
            try:
                remaining = self.client.keepalive(lease_id)
            except NicpoolError as exc:
                log.warning("lease keepalive failed (%s)", exc)
                remaining = -1
            if remaining > 0:
                self._alive_until = sent + remaining
            elif remaining == 0:
                self._alive_until = 0.0
            if not self._alive():
                self._report_lost()
                return

    def _next_wait(self, interval: float) -> float:
        # Wake no later than the local deadline so loss is reported promptly.
        return max(0.0, min(interval, self._alive_until - self._clock()))

    def _report_lost(self) -> None:
        was_leader = self._fence is not None
        self._fence = None
        if was_leader and not self._lost_reported:
            self._lost_reported = True
            log.error("%s lost leadership: its etcd lease lapsed", self.identity)
            if self.on_lost is not None:
                self.on_lost()
