"""What the node agent reads: one pod NIC's attachment, now or when it appears.

The agent answers the CNI plugin with exactly one etcd round trip when the
controller has already allocated (the common case: the controller acts at
pod creation, long before kubelet runs the sandbox). When the attachment is
not there yet it watches the pod's attachment keys from the revision it
read at, so it cannot miss a write that lands between the read and the
watch, and it never polls.

A NIC may be stored under one of several refs (a pod that attaches the same
NAD twice has its NICs keyed ``<provider>.<interface>``), so the reads take
the candidates in order of preference and return the first that exists.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from store.core.identity import AttachmentRef
from store.core.keys import Keys
from store.core.ops import Get, KeyValue
from store.core.records import Attachment, decode_attachment
from store.errors import TemporaryError
from store.etcd import EtcdClient

_RETRY_PAUSE = 0.2
"""Seconds between attempts while etcd is unreachable."""


class AttachmentReader:
    def __init__(self, client: EtcdClient, prefix: str) -> None:
        self.client = client
        self.keys = Keys(prefix)

    def get(self, ref: AttachmentRef) -> Attachment | None:
        return self.get_any([ref])

    def wait(self, ref: AttachmentRef, timeout: float) -> Attachment | None:
        return self.wait_any([ref], timeout)

    def get_any(self, refs: Sequence[AttachmentRef]) -> Attachment | None:
        """The first of ``refs`` that has an attachment, in one round trip."""
        return self._read(refs)[0]

    def wait_any(self, refs: Sequence[AttachmentRef], timeout: float) -> Attachment | None:
        """The first of ``refs`` with an attachment, waiting up to ``timeout`` s for one."""
        pods = {ref.pod for ref in refs}
        if len(pods) != 1:
            raise ValueError(f"candidates must name one pod, got {sorted(map(str, pods))}")
        wanted = {self.keys.attachment(ref) for ref in refs}
        pod_prefix = self.keys.pod_attachments(refs[0].pod)
        deadline = time.monotonic() + timeout
        found, revision = self._read(refs)
        while found is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:
                events = self.client.watch_prefix(
                    pod_prefix, start_revision=revision + 1, timeout=remaining
                )
            except TemporaryError:
                # etcd restarted or the stream broke: pause, read again (the
                # write may have landed meanwhile) and watch from there.
                time.sleep(min(_RETRY_PAUSE, max(0.0, deadline - time.monotonic())))
                found, revision = self._read_or_none(refs, revision)
                continue
            if not events:
                return None
            revision = max(event.mod_revision for event in events)
            found = self._preferred(refs, {e.key: e for e in events if e.key in wanted and e.value})
        return found

    def _preferred(
        self, refs: Sequence[AttachmentRef], written: dict[str, KeyValue]
    ) -> Attachment | None:
        """The most preferred of ``refs`` among attachments just written, if any."""
        for ref in refs:
            kv = written.get(self.keys.attachment(ref))
            if kv is not None:
                return decode_attachment(kv.value)
        return None

    def _read_or_none(
        self, refs: Sequence[AttachmentRef], revision: int
    ) -> tuple[Attachment | None, int]:
        try:
            return self._read(refs)
        except TemporaryError:
            return None, revision

    def _read(self, refs: Sequence[AttachmentRef]) -> tuple[Attachment | None, int]:
        outcome = self.client.txn([], [Get(self.keys.attachment(ref)) for ref in refs])
        for kv in outcome.gets:
            if kv is not None:
                return decode_attachment(kv.value), outcome.revision
        return None, outcome.revision
