"""List-then-watch for one resource, with a local cache and change callbacks.

The loop (kopf's and client-go's shape): list everything and remember the
list's resourceVersion; diff the list against the cache (so a relist after
a gap reports adds, updates and deletes it missed), page by page as the
pages arrive, deletes at the end; then watch from that
resourceVersion, applying each event to the cache; on ``410 Gone`` (the
version was compacted away) go back and relist; on any other failure wait
with backoff and resume the watch from the last version seen.

What makes that safe when connections break (DESIGN.md, trust boundaries):

* **The version advances per event**, not when a watch ends normally: a
  watch broken mid-stream resumes after the last event delivered, so the
  server never replays history the cache has already moved past.
* **An event not newer than the cached object is ignored** (a replay, however
  it came): resourceVersions are compared as numbers when both are numbers,
  as every etcd-backed apiserver makes them.
* **A delete of an earlier incarnation** (same name, another UID) leaves the
  cached newer object alone and reports only that UID as deleted, so the
  controller tombstones exactly the pod that went.
* **A silent connection is noticed.** Each watch asks the server to end it
  after ``watch_timeout`` seconds and reads with an idle timeout a little
  longer (``watch_timeout + 15``): a black-holed connection raises within
  about a minute instead of the kernel's TCP timeout. :meth:`healthy` turns
  false when no list, watch start or event has been seen for
  ``2 * watch_timeout`` seconds, or the loop is not running.
* **The loop survives every exception**: an unexpected one is logged,
  counted in :attr:`failures`, and followed by a relist.

Callbacks get ``(old, new)``: ``old`` None for an add, ``new`` None for a
delete. They run on the informer's thread and must be quick (enqueue work).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from reconciler.kube.client import JSON, KubeClient
from reconciler.kube.errors import Gone
from reconciler.kube.resources import Resource
from store.errors import NicpoolError

log = logging.getLogger("nicpool.informer")

Handler = Callable[[JSON | None, JSON | None], None]


def object_key(obj: JSON) -> str:
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace")
    return f"{namespace}/{meta.get('name')}" if namespace else str(meta.get("name"))


class Informer:
    """One resource's cache, kept current by list + watch on a daemon thread."""

    def __init__(
        self,
        client: KubeClient,
        resource: Resource,
        *,
        handler: Handler | None = None,
        stop: threading.Event | None = None,
        watch_timeout: int = 40,
        on_relist: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.resource = resource
        self.handler = handler
        self.stop = stop or threading.Event()
        self.watch_timeout = watch_timeout
        self.on_relist = on_relist
        self.synced = threading.Event()
        self._clock = clock
        self._cache: dict[str, JSON] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.version: str | None = None
        """The resourceVersion to resume from: the list's, then each event's."""
        self.relists = 0
        self.failures = 0
        """Unexpected exceptions the loop survived."""
        self.last_contact = clock()
        """When the server was last heard from (a list, a watch start, an event)."""

    # -- reads ---------------------------------------------------------------

    def get(self, key: str) -> JSON | None:
        with self._lock:
            return self._cache.get(key)

    def items(self) -> list[JSON]:
        with self._lock:
            return list(self._cache.values())

    def __len__(self) -> int:
        return len(self._cache)

    def healthy(self) -> bool:
        """Synced, the loop running, and the server heard from recently."""
        running = self._thread is None or self._thread.is_alive()
        quiet = self._clock() - self.last_contact
        return self.synced.is_set() and running and quiet < 2 * self.watch_timeout

    # -- loop ----------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.run, name=f"informer-{self.resource.plural}", daemon=True
        )
        self._thread.start()

    def run(self) -> None:
        delay = 0.2
        while not self.stop.is_set():
            try:
                if self.version is None:
                    self.version = self.relist()
                self._watch()
                delay = 0.2
            except Gone:
                log.info("%s: watch expired (410); relisting", self.resource.plural)
                self.version = None
            except NicpoolError as exc:
                log.warning("%s: %s; retrying in %.1f s", self.resource.plural, exc, delay)
                self.stop.wait(delay)
                delay = min(delay * 2, 10.0)
            except Exception:
                # A bug or a surprise from the server: never let the cache die
                # silently. Relist from scratch after a pause.
                self.failures += 1
                log.exception("%s: unexpected failure; relisting", self.resource.plural)
                self.version = None
                self.stop.wait(delay)
                delay = min(delay * 2, 10.0)

    def relist(self) -> str:
        """List, reconcile the cache with the list, and return the list's resourceVersion.

        Each page is applied, and its changes reported, as it arrives: a
        consumer can act on the first objects of a long list (50,000 pods)
        before the last page is in. What the list no longer shows is
        reported deleted at its end, and only then is the informer synced.
        """
        began = time.monotonic()
        seen: set[str] = set()
        version = ""
        for items, listed_at in self.client.list_pages(self.resource):
            self.last_contact = self._clock()
            self._merge(items, seen)
            version = listed_at
        with self._lock:
            gone = [self._cache.pop(key) for key in list(self._cache) if key not in seen]
        for obj in gone:
            self._emit(obj, None)
        self.relists += 1
        if not self.synced.is_set():
            log.info(
                "%s: %d listed in %.2f s",
                self.resource.plural,
                len(seen),
                time.monotonic() - began,
            )
        self.synced.set()
        if self.on_relist is not None:
            self.on_relist()
        return version

    def _merge(self, items: list[JSON], seen: set[str]) -> None:
        """One page of a list into the cache; report what it adds or changes."""
        changed: list[tuple[JSON | None, JSON]] = []
        with self._lock:
            for obj in items:
                key = object_key(obj)
                seen.add(key)
                before, self._cache[key] = self._cache.get(key), _slim(obj)
                if before is None or _version(before) != _version(obj):
                    changed.append((before, obj))
        for before, obj in changed:
            self._emit(before, obj)

    def _watch(self) -> None:
        """Watch from :attr:`version` until the server ends the watch (or it breaks)."""
        assert self.version is not None
        events = self.client.watch(self.resource, self.version, timeout_seconds=self.watch_timeout)
        for kind, obj in events:
            self.last_contact = self._clock()
            if self.stop.is_set():
                break
            if kind != "BOOKMARK":
                self.apply(kind, obj)
            # Only after the event is applied: a break between the two replays it.
            self.version = _version(obj) or self.version
        self.last_contact = self._clock()

    def apply(self, kind: str, obj: JSON) -> None:
        key = object_key(obj)
        obj = _slim(obj)
        with self._lock:
            before = self._cache.get(key)
            if before is not None and _older(obj, before):
                log.info(
                    "%s %s: ignoring a %s event at %s older than the cached %s",
                    self.resource.plural,
                    key,
                    kind,
                    _version(obj),
                    _version(before),
                )
                return
            if kind == "DELETED" and before is not None and _uid(before) != _uid(obj):
                pass  # an earlier incarnation went; the cached newer one stays
            elif kind == "DELETED":
                self._cache.pop(key, None)
            else:
                self._cache[key] = obj
        if kind == "DELETED":
            self._emit(obj, None)
        else:
            self._emit(before, obj)

    def _emit(self, old: JSON | None, new: JSON | None) -> None:
        if self.handler is None:
            return
        try:
            self.handler(old, new)
        except Exception:
            log.exception("%s: handler failed", self.resource.plural)


def _version(obj: JSON) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion", ""))


def _uid(obj: JSON) -> str:
    return str((obj.get("metadata") or {}).get("uid", ""))


def _older(obj: JSON, cached: JSON) -> bool:
    """True when ``obj`` is not newer than ``cached`` (both versions numeric): a replay."""
    new, old = _version(obj), _version(cached)
    return new.isdigit() and old.isdigit() and int(new) <= int(old)


def _slim(obj: dict[str, Any]) -> JSON:
    """Drop managedFields: large, and nothing here reads them."""
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
    return obj
