"""What the agent decides for each request, over a two-method lease source.

The service never touches HTTP or etcd directly: it takes a parsed request,
asks a :class:`LeaseSource` (in production ``store.attachments.AttachmentReader``,
one etcd read, a watch only while the lease is not there yet) and returns an
:class:`Answer` (status, body, error reason) that the HTTP layer writes and
counts. The agent never allocates or frees: the controller owns leases, so
DEL only forgets what this agent served, and GC only counts what the runtime
no longer holds.
"""

from __future__ import annotations

import fnmatch
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from cnibin.agent.protocol import AddRequest, build_add_reply, error_body
from store.core.identity import AttachmentRef
from store.core.records import Attachment, RecordError
from store.errors import TemporaryError


class LeaseSource(Protocol):
    """Where leases come from (``store.attachments.AttachmentReader`` fits)."""

    def get_any(self, refs: Sequence[AttachmentRef]) -> Attachment | None: ...

    def wait_any(self, refs: Sequence[AttachmentRef], timeout: float) -> Attachment | None: ...


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any] | None
    reason: str = ""
    """Empty on success; else the ``nicpool_cni_errors_total`` reason label."""
    waited: float = 0.0
    """Seconds spent looking the lease up (read + watch)."""


@dataclass
class Served:
    """Attachments this agent answered, by ``(container_id, if_name)`` (for GC)."""

    entries: dict[tuple[str, str], AttachmentRef] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def remember(self, key: tuple[str, str], ref: AttachmentRef) -> None:
        with self.lock:
            self.entries[key] = ref

    def forget(self, key: tuple[str, str]) -> None:
        with self.lock:
            self.entries.pop(key, None)

    def unknown_to(self, valid: set[tuple[str, str]]) -> list[tuple[str, str]]:
        """Served attachments the runtime no longer lists; they are dropped."""
        with self.lock:
            stale = [key for key in self.entries if key not in valid]
            for key in stale:
                del self.entries[key]
        return stale


class AgentService:
    def __init__(
        self, *, source: LeaseSource, lease_wait: float = 20.0, bridges: Sequence[str] = ()
    ) -> None:
        self.source = source
        self.lease_wait = lease_wait
        self.bridges = tuple(bridges)
        """Bridges (fnmatch patterns) a main-plugin NIC may join on this node; none by
        default: a NAD naming ``cni0``, ``docker0`` or another tenant's bridge would
        otherwise reach that layer-2 network."""
        self.served = Served()
        self.etcd_ok = True
        """Outcome of the last etcd call; STATUS reports unavailable while False."""

    def add(self, request: AddRequest) -> Answer:
        if request.bridge and not any(fnmatch.fnmatchcase(request.bridge, p) for p in self.bridges):
            allowed = ", ".join(self.bridges) or "none"
            message = (
                f"bridge {request.bridge} may not be joined on this node (the agent's "
                f"--bridges allows: {allowed})"
            )
            return Answer(403, error_body(message), "BridgeNotAllowed")
        budget = self.lease_wait
        if request.wait_seconds is not None:
            budget = min(budget, request.wait_seconds)
        started = time.monotonic()
        try:
            candidates = request.candidates()
            att = (
                self.source.wait_any(candidates, budget)
                if budget > 0
                else self.source.get_any(candidates)
            )
        except TemporaryError as exc:
            self.etcd_ok = False
            return Answer(503, error_body(f"etcd unavailable: {exc}"), "EtcdUnavailable")
        except RecordError as exc:
            return Answer(500, error_body(str(exc)), "UnreadableRecord")
        self.etcd_ok = True
        waited = time.monotonic() - started
        return self._answer(request, att, budget, waited)

    def _answer(
        self, request: AddRequest, att: Attachment | None, budget: float, waited: float
    ) -> Answer:
        if att is None and budget <= 0:
            message = f"no lease for {request.ref}"
            return Answer(404, error_body(message), "NoLease", waited)
        if att is None:
            message = (
                f"no lease for {request.ref} after {budget:g}s: is nicpool-controller running, "
                f"and does a Subnet have provider {request.ref.provider}?"
            )
            return Answer(504, error_body(message), "LeaseTimeout", waited)
        if request.pod_uid is not None and att.uid != request.pod_uid:
            message = (
                f"the lease for {request.ref} belongs to pod uid {att.uid}, not {request.pod_uid}; "
                "the controller has not yet allocated for the new pod"
            )
            return Answer(409, error_body(message), "UidMismatch", waited)
        if request.container_id:
            self.served.remember((request.container_id, request.if_name), request.ref)
        return Answer(200, build_add_reply(att, request), waited=waited)

    def delete(self, request: AddRequest) -> Answer:
        self.served.forget((request.container_id, request.if_name))
        return Answer(204, None)

    def gc(self, valid: set[tuple[str, str]]) -> Answer:
        stale = self.served.unknown_to(valid)
        body = {"unknown": [{"containerID": c, "ifname": i} for c, i in stale]}
        return Answer(200, body)

    def health(self) -> Answer:
        if self.etcd_ok:
            return Answer(200, {"ok": True})
        return Answer(503, error_body("the last etcd call failed"), "EtcdUnavailable")
