"""List-then-watch for one resource, with a local cache and change callbacks.

The loop (kopf's and client-go's shape): list everything and remember the
list's resourceVersion; diff the list against the cache (so a relist after
a gap reports adds, updates and deletes it missed); then watch from that
resourceVersion, applying each event to the cache; on ``410 Gone`` (the
version was compacted away) go back and relist; on any other temporary
failure wait with backoff and resume the watch from the last version seen.

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
        watch_timeout: int = 300,
        on_relist: Callable[[], None] | None = None,
    ) -> None:
        self.client = client
        self.resource = resource
        self.handler = handler
        self.stop = stop or threading.Event()
        self.watch_timeout = watch_timeout
        self.on_relist = on_relist
        self.synced = threading.Event()
        self._cache: dict[str, JSON] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.relists = 0

    # -- reads ---------------------------------------------------------------

    def get(self, key: str) -> JSON | None:
        with self._lock:
            return self._cache.get(key)

    def items(self) -> list[JSON]:
        with self._lock:
            return list(self._cache.values())

    def __len__(self) -> int:
        return len(self._cache)

    # -- loop ----------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.run, name=f"informer-{self.resource.plural}", daemon=True
        )
        self._thread.start()

    def run(self) -> None:
        delay = 0.2
        version: str | None = None
        while not self.stop.is_set():
            try:
                if version is None:
                    version = self.relist()
                version = self._watch(version)
                delay = 0.2
            except Gone:
                log.info("%s: watch expired (410); relisting", self.resource.plural)
                version = None
            except NicpoolError as exc:
                log.warning("%s: %s; retrying in %.1f s", self.resource.plural, exc, delay)
                self.stop.wait(delay)
                delay = min(delay * 2, 10.0)

    def relist(self) -> str:
        """List, reconcile the cache with the list, and return the list's resourceVersion."""
        began = time.monotonic()
        items, version = self.client.list(self.resource)
        fresh = {object_key(obj): _slim(obj) for obj in items}
        with self._lock:
            old_cache, self._cache = self._cache, dict(fresh)
        for key, obj in fresh.items():
            before = old_cache.get(key)
            if before is None or _version(before) != _version(obj):
                self._emit(before, obj)
        for key, obj in old_cache.items():
            if key not in fresh:
                self._emit(obj, None)
        self.relists += 1
        if not self.synced.is_set():
            log.info(
                "%s: %d listed in %.2f s",
                self.resource.plural,
                len(fresh),
                time.monotonic() - began,
            )
        self.synced.set()
        if self.on_relist is not None:
            self.on_relist()
        return version

    def _watch(self, version: str) -> str:
        for kind, obj in self.client.watch(
            self.resource, version, timeout_seconds=self.watch_timeout
        ):
            if self.stop.is_set():
                break
            version = _version(obj) or version
            if kind == "BOOKMARK":
                continue
            self.apply(kind, obj)
        return version

    def apply(self, kind: str, obj: JSON) -> None:
        key = object_key(obj)
        obj = _slim(obj)
        with self._lock:
            before = self._cache.get(key)
            if kind == "DELETED":
                self._cache.pop(key, None)
            else:
                self._cache[key] = obj
        self._emit(before, None if kind == "DELETED" else obj)

    def _emit(self, old: JSON | None, new: JSON | None) -> None:
        if self.handler is None:
            return
        try:
            self.handler(old, new)
        except Exception:
            log.exception("%s: handler failed", self.resource.plural)


def _version(obj: JSON) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion", ""))


def _slim(obj: dict[str, Any]) -> JSON:
    """Drop managedFields: large, and nothing here reads them."""
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
    return obj
