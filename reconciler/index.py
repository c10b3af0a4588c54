"""The leader's in-memory copy of the attachments in etcd.

Loaded with one range read when a replica becomes leader (etcd is
authoritative; nothing is rebuilt from pod annotations), then kept current
by the leader's own writes, which are the only writes while it leads (the
fence guarantees that). It lets a restarted leader see in memory that a
pod is already done, instead of one etcd read per pod.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterable

from store.core.identity import AttachmentRef, PodRef
from store.core.records import Attachment


class AttachmentIndex:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_ref: dict[AttachmentRef, Attachment] = {}
        self._by_pod: dict[PodRef, set[AttachmentRef]] = defaultdict(set)
        self._journal: dict[AttachmentRef, Attachment | None] | None = None
        self.loaded = False
        """False while a (re)load is under way: absence from the index proves nothing."""

    def begin_load(self) -> None:
        """Start a reload: writes from now on are journaled and win over the read."""
        with self._lock:
            self._journal = {}
            self.loaded = False

    def finish_load(self, attachments: Iterable[Attachment]) -> None:
        """Install what etcd held at the read, then replay writes made meanwhile."""
        fresh = list(attachments)
        with self._lock:
            journal, self._journal = self._journal or {}, None
            self._by_ref.clear()
            self._by_pod.clear()
            for att in fresh:
                self._put(att)
            for ref, written in journal.items():
                if written is None:
                    self._drop(ref)
                else:
                    self._put(written)
            self.loaded = True

    def load(self, attachments: Iterable[Attachment]) -> None:
        self.begin_load()
        self.finish_load(attachments)

    def put(self, att: Attachment) -> None:
        with self._lock:
            self._put(att)
            if self._journal is not None:
                self._journal[att.ref] = att

    def _put(self, att: Attachment) -> None:
        self._by_ref[att.ref] = att
        self._by_pod[att.ref.pod].add(att.ref)

    def drop(self, ref: AttachmentRef) -> None:
        with self._lock:
            self._drop(ref)
            if self._journal is not None:
                self._journal[ref] = None

    def _drop(self, ref: AttachmentRef) -> None:
        self._by_ref.pop(ref, None)
        refs = self._by_pod.get(ref.pod)
        if refs is not None:
            refs.discard(ref)
            if not refs:
                del self._by_pod[ref.pod]

    def get(self, ref: AttachmentRef) -> Attachment | None:
        with self._lock:
            return self._by_ref.get(ref)

    def of_pod(self, pod: PodRef) -> list[Attachment]:
        with self._lock:
            return [self._by_ref[r] for r in sorted(self._by_pod.get(pod, ()))]

    def all(self) -> list[Attachment]:
        with self._lock:
            return list(self._by_ref.values())

    def __len__(self) -> int:
        return len(self._by_ref)
