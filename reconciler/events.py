"""Kubernetes Events for refusals: on the pod (bad input) or on the Subnet (misconfiguration).

Repeats of the same (object, reason, message) bump ``count`` on the Event
already written instead of creating a new one, like kubelet's recorder, so
a pod retried with backoff does not flood its namespace. The memory of
Events written is bounded (:data:`REMEMBERED`, least recently used first
out): a forgotten one is written anew, never lost. Recording is best effort:
a failure is logged, never raised into the workflow.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass

from reconciler.core.bounded import BoundedMap
from reconciler.kube.client import KubeClient
from reconciler.kube.resources import EVENTS
from store.errors import NicpoolError

log = logging.getLogger("nicpool.events")
COMPONENT = "nicpool-controller"
REMEMBERED = 4096
"""Events whose name and count are kept to bump on a repeat."""


@dataclass(frozen=True)
class Involved:
    kind: str
    api_version: str
    namespace: str
    name: str
    uid: str

    @property
    def event_namespace(self) -> str:
        # Events about cluster-scoped objects (Subnets) live in "default".
        return self.namespace or "default"


class EventRecorder:
    def __init__(self, kube: KubeClient, *, instance: str) -> None:
        self.kube = kube
        self.instance = instance
        self._seen: BoundedMap[tuple[str, str, str], tuple[str, int]] = BoundedMap(REMEMBERED)

    def warn(self, obj: Involved, reason: str, message: str) -> None:
        self.record(obj, reason, message, kind="Warning")

    def record(self, obj: Involved, reason: str, message: str, *, kind: str = "Normal") -> None:
        key = (obj.uid, reason, message)
        now = _now()
        previous = self._seen.get(key)
        try:
            if previous is not None:
                name, count = previous
                self.kube.merge_patch(
                    EVENTS, obj.event_namespace, name, {"count": count + 1, "lastTimestamp": now}
                )
                self._seen.set(key, (name, count + 1))
                return
            created = self.kube.create(
                EVENTS, obj.event_namespace, self._body(obj, reason, message, kind, now)
            )
            self._seen.set(key, (str(created["metadata"]["name"]), 1))
        except NicpoolError as exc:
            self._seen.pop(key)
            log.warning("could not record event %s on %s/%s: %s", reason, obj.kind, obj.name, exc)

    def _body(
        self, obj: Involved, reason: str, message: str, kind: str, now: str
    ) -> dict[str, object]:
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{obj.name}.", "namespace": obj.event_namespace},
            "involvedObject": {
                "kind": obj.kind,
                "apiVersion": obj.api_version,
                "namespace": obj.namespace or None,
                "name": obj.name,
                "uid": obj.uid,
            },
            "reason": reason,
            "message": message[:1000],
            "type": kind,
            "count": 1,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "reportingInstance": self.instance,
        }


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
