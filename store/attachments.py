"""What the node agent reads: one pod NIC's attachment, now or when it appears.

The agent answers the CNI plugin with exactly one etcd read when the
controller has already allocated (the common case: the controller acts at
pod creation, long before kubelet runs the sandbox). When the attachment is
not there yet it watches that one key from the revision it read at, so it
cannot miss a write that lands between the read and the watch, and it never
polls.
"""

from __future__ import annotations

import time

from store.core.identity import AttachmentRef
from store.core.keys import Keys
from store.core.records import Attachment, decode_attachment
from store.etcd import EtcdClient


class AttachmentReader:
    def __init__(self, client: EtcdClient, prefix: str) -> None:
        self.client = client
        self.keys = Keys(prefix)

    def get(self, ref: AttachmentRef) -> Attachment | None:
        kv, _ = self.client.get(self.keys.attachment(ref))
        return decode_attachment(kv.value) if kv else None

    def wait(self, ref: AttachmentRef, timeout: float) -> Attachment | None:
        """The attachment, waiting up to ``timeout`` seconds for it to be written."""
        key = self.keys.attachment(ref)
        deadline = time.monotonic() + timeout
        kv, revision = self.client.get(key)
        while kv is None or not kv.value:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            kv = self.client.watch_key(key, start_revision=revision + 1, timeout=remaining)
            if kv is not None:
                revision = kv.mod_revision
        return decode_attachment(kv.value)
