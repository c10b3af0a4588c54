"""Recorders: nicpool's etcd writes and the pods' lives, appended to a History as they happen.

Both talk to the servers directly, never through a fault proxy, and both
resume where they stopped: the etcd watch from the revision after the last
one it delivered (no compaction runs, so nothing is ever missed), on
whichever member answers; the pod watch from the resourceVersion of the
last event, relisting only on ``410 Gone`` (and then reporting pods that
vanished meanwhile as deleted at that moment). A recorder that replayed
history would accuse nicpool of what it did not do.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import grpc
from pyetcd import etcdrpc

from ops.lab.etcdcluster import EtcdCluster
from reconciler.kube.client import KubeClient
from reconciler.kube.errors import Gone
from reconciler.kube.resources import PODS
from store.core.identity import AttachmentRef
from store.core.keys import Keys
from store.core.records import Lease, decode_attachment, decode_lease
from store.errors import NicpoolError
from store.etcdwire import prefix_end
from tests.faults.history import (
    EXPECT,
    WORKLOAD,
    AttachmentWrite,
    ElectionWrite,
    History,
    LeaseWrite,
    PodSeen,
)

log = logging.getLogger("faults.recorders")
KEEPALIVE = [
    ("grpc.keepalive_time_ms", 5000),
    ("grpc.keepalive_timeout_ms", 5000),
    ("grpc.keepalive_permit_without_calls", 1),
]


class EtcdRecorder:
    """Every lease, attachment and election key written under ``prefix``."""

    def __init__(self, cluster: EtcdCluster, prefix: str, history: History) -> None:
        self.cluster, self.keys, self.history = cluster, Keys(prefix), history
        self.revision = 0
        """The next revision to deliver."""
        self.breaks = 0
        self.stop = threading.Event()
        self._call: Any = None
        pair = cluster.client_pair("root")
        self._creds = grpc.ssl_channel_credentials(
            cluster.ca.cert.read_bytes(), pair.key.read_bytes(), pair.cert.read_bytes()
        )
        self._thread = threading.Thread(target=self._run, daemon=True, name="etcd-recorder")

    def start(self) -> EtcdRecorder:
        self._thread.start()
        return self

    def halt(self) -> None:
        self.stop.set()
        if self._call is not None:
            self._call.cancel()
        self._thread.join(30)

    def _run(self) -> None:
        members = itertools.cycle(range(len(self.cluster.members)))
        while not self.stop.is_set():
            member = self.cluster.members[next(members)]
            channel = grpc.secure_channel(f"127.0.0.1:{member.client_port}", self._creds, KEEPALIVE)
            try:
                if self.revision == 0:
                    self._snapshot(channel)
                self._watch(channel)
            except (grpc.RpcError, RuntimeError) as exc:
                self.breaks += 1
                log.info("etcd watch on %s broke (%s); resuming", member.name, exc)
                self.stop.wait(0.2)
            finally:
                channel.close()

    def _snapshot(self, channel: grpc.Channel) -> None:
        """What exists before the watch starts (normally nothing: a fresh prefix)."""
        prefix = self.keys.prefix
        request = etcdrpc.RangeRequest(key=prefix.encode(), range_end=prefix_end(prefix))
        response = etcdrpc.KVStub(channel).Range(request, timeout=5)
        for kv in response.kvs:
            self._record(kv, None, deleted=False)
        self.revision = response.header.revision + 1

    def _requests(self) -> Iterator[Any]:
        prefix = self.keys.prefix
        create = etcdrpc.WatchCreateRequest(
            key=prefix.encode(),
            range_end=prefix_end(prefix),
            start_revision=self.revision,
            prev_kv=True,
        )
        yield etcdrpc.WatchRequest(create_request=create)
        self.stop.wait()

    def _watch(self, channel: grpc.Channel) -> None:
        # "hasleader": a member cut off from the quorum ends the watch instead of going quiet.
        self._call = etcdrpc.WatchStub(channel).Watch(
            self._requests(), metadata=(("hasleader", "true"),)
        )
        for response in self._call:
            if response.canceled:
                raise RuntimeError(f"watch canceled: {response.cancel_reason}")
            for event in response.events:
                self._record(event.kv, event.prev_kv, deleted=event.type == 1)
            if response.events:
                self.revision = max(e.kv.mod_revision for e in response.events) + 1

    def _record(self, kv: Any, prev: Any, *, deleted: bool) -> None:
        key, at, revision = kv.key.decode(), time.time(), int(kv.mod_revision)
        if key.startswith(self.keys.election):
            created = 0 if deleted else int(kv.create_revision)
            self.history.elections.append(ElectionWrite(revision, at, key, created))
        elif key.startswith(self.keys.attachments):
            self.history.attachments.append(self._attachment(key, at, kv, deleted=deleted))
        elif "/leases/" in key and key.startswith(self.keys.subnets):
            self.history.leases.append(self._lease(key, at, kv, prev, deleted=deleted))

    def _attachment(self, key: str, at: float, kv: Any, *, deleted: bool) -> AttachmentWrite:
        revision = int(kv.mod_revision)
        ref = self.keys.attachment_ref(key)
        pod, provider = str(ref.pod), str(ref.provider)
        if deleted:
            return AttachmentWrite(revision, at, pod, provider, None)
        att = decode_attachment(bytes(kv.value))
        ips = tuple(leased.ip for leased in att.ips)
        return AttachmentWrite(revision, at, pod, provider, att.uid, att.subnet, ips, att.fence)

    def _lease(self, key: str, at: float, kv: Any, prev: Any, *, deleted: bool) -> LeaseWrite:
        revision = int(kv.mod_revision)
        subnet, ip = key[len(self.keys.subnets) :].split("/leases/", 1)
        before = decode_lease(bytes(prev.value)) if prev is not None and prev.value else None
        previous = before.uid if before is not None else None
        if deleted:
            owner = _owner(before)[0] if before is not None else ""
            return LeaseWrite(revision, at, subnet, ip, None, previous, owner)
        lease = decode_lease(bytes(kv.value))
        pod, provider = _owner(lease)
        return LeaseWrite(revision, at, subnet, ip, lease.uid, previous, pod, provider, lease.fence)


def _owner(lease: Lease) -> tuple[str, str]:
    """(``ns/name``, provider) of a pod NIC's lease; an owner's name (claim, VM) otherwise."""
    if isinstance(lease.owner, AttachmentRef):
        return str(lease.owner.pod), str(lease.owner.provider)
    return str(lease.owner), ""


class PodRecorder:
    """Every version of every pod in ``namespace``, from the apiserver."""

    def __init__(self, kube: KubeClient, namespace: str, history: History) -> None:
        self.kube, self.namespace, self.history = kube, namespace, history
        self.known: dict[str, tuple[str, str]] = {}
        """uid -> (name, resourceVersion) of every pod believed alive."""
        self.relists = 0
        self.stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="pod-recorder")

    def start(self) -> PodRecorder:
        self._thread.start()
        return self

    def halt(self) -> None:
        self.stop.set()
        self._thread.join(90)

    def alive(self) -> dict[str, str]:
        """uid -> name of the pods the recorder believes alive now."""
        return {uid: name for uid, (name, _) in dict(self.known).items()}

    def _run(self) -> None:
        version: str | None = None
        while not self.stop.is_set():
            try:
                if version is None:
                    version = self._relist()
                version = self._watch(version)
            except Gone:
                version = None
            except NicpoolError as exc:
                log.info("pod watch broke (%s); resuming from %s", exc, version)
                self.stop.wait(0.5)

    def _relist(self) -> str:
        items, version = self.kube.list(PODS)
        pods = {p["metadata"]["uid"]: p for p in items if _ns(p) == self.namespace}
        for uid, (name, _) in list(self.known.items()):
            if uid not in pods:
                self._seen("DELETED", {"metadata": {"uid": uid, "name": name}})
        for pod in pods.values():
            known = self.known.get(pod["metadata"]["uid"])
            if known is None or known[1] != pod["metadata"].get("resourceVersion"):
                self._seen("ADDED" if known is None else "MODIFIED", pod)
        self.relists += 1
        return version

    def _watch(self, version: str) -> str:
        for kind, obj in self.kube.watch(PODS, version, timeout_seconds=60):
            version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
            if kind != "BOOKMARK" and _ns(obj) == self.namespace:
                self._seen(kind, obj)
            if self.stop.is_set():
                break
        return version

    def _seen(self, kind: str, pod: dict[str, Any]) -> None:
        meta = pod.get("metadata") or {}
        uid, name = str(meta.get("uid")), str(meta.get("name"))
        notes = meta.get("annotations") or {}
        kept = {
            k: v
            for k, v in notes.items()
            if k.endswith((".kubernetes.io/allocated", ".kubernetes.io/ip_address"))
        }
        expect = tuple(p for p in notes.get(EXPECT, "").split(",") if p)
        workload = (meta.get("labels") or {}).get(WORKLOAD)
        if kind == "DELETED":
            self.known.pop(uid, None)
        else:
            self.known[uid] = (name, str(meta.get("resourceVersion")))
        self.history.pods.append(
            PodSeen(time.time(), kind, self.namespace, name, uid, kept, workload, expect)
        )


def _ns(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("namespace"))
