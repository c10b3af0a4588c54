"""Pods and their NICs, as the apiserver and the seed's annotations describe them.

A NIC here is what Multus would create for one attachment: the NAD named by
``v1.multus-cni.io/default-network`` becomes ``eth0``; each entry of
``k8s.v1.cni.cncf.io/networks`` becomes ``net1``, ``net2``, ... in order
(an ``@if`` suffix or an ``interface`` key overrides the name). Its provider
is ``<nad>.<namespace>``, which is the seed NAD's ``ipam.provider``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

NETWORKS = "k8s.v1.cni.cncf.io/networks"
DEFAULT_NETWORK = "v1.multus-cni.io/default-network"
REQUEST_TIMEOUT = 15
"""Seconds per API call: an apiserver whose etcd died answers nothing, not an error."""


class DemoError(Exception):
    """A step did not reach the state it waits for; the message says which."""


@dataclass(frozen=True)
class Nic:
    namespace: str
    pod: str
    uid: str
    nad: str
    ifname: str
    annotations: dict[str, str]

    @property
    def provider(self) -> str:
        return f"{self.nad.split('/')[1]}.{self.nad.split('/')[0]}"

    def lease(self, key: str) -> str:
        """The controller's ``<provider>.kubernetes.io/<key>`` annotation."""
        return self.annotations.get(f"{self.provider}.kubernetes.io/{key}", "")


def _qualified(name: str, namespace: str) -> str:
    return name if "/" in name else f"{namespace}/{name}"


def attachments(annotations: dict[str, str], namespace: str) -> list[tuple[str, str]]:
    """``(namespace/nad, ifname)`` per NIC, numbered the way Multus numbers them."""
    found: list[tuple[str, str]] = []
    if DEFAULT_NETWORK in annotations:
        found.append((_qualified(annotations[DEFAULT_NETWORK].strip(), namespace), "eth0"))
    raw = annotations.get(NETWORKS, "").strip()
    entries: list[dict[str, Any]]
    if raw.startswith("["):
        entries = json.loads(raw)
    else:
        entries = []
        for item in filter(None, (part.strip() for part in raw.split(","))):
            name, _, ifname = item.partition("@")
            entries.append({"name": name, "interface": ifname or None})
    for index, entry in enumerate(entries, start=1):
        nad = _qualified(entry["name"], entry.get("namespace") or namespace)
        found.append((nad, entry.get("interface") or f"net{index}"))
    return found


def nics(pod: Any) -> list[Nic]:
    meta = pod.metadata
    annotations = dict(meta.annotations or {})
    return [
        Nic(meta.namespace, meta.name, meta.uid, nad, ifname, annotations)
        for nad, ifname in attachments(annotations, meta.namespace)
    ]


def wait_pods(core: Any, namespace: str, names: set[str], selector: str, count: int) -> list[Any]:
    """The named pods plus ``count`` pods matching ``selector``, once all exist."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        pods = list(core.list_namespaced_pod(namespace, _request_timeout=REQUEST_TIMEOUT).items)
        named = [p for p in pods if p.metadata.name in names]
        labelled = [p for p in pods if _matches(p, selector)]
        if len(named) == len(names) and len(labelled) >= count:
            return named + labelled[:count]
        time.sleep(0.2)
    raise DemoError(f"pods {sorted(names)} and {count} x {selector} did not all appear in 60 s")


def _matches(pod: Any, selector: str) -> bool:
    if not selector:
        return False
    key, _, value = selector.partition("=")
    return bool((pod.metadata.labels or {}).get(key) == value)


def wait_allocated(core: Any, pods: list[Any], timeout: float = 90) -> list[Nic]:
    """Every NIC of every pod, re-read once its ``allocated`` annotation is "true"."""
    deadline = time.monotonic() + timeout
    order = [(p.metadata.namespace, p.metadata.name) for p in pods]
    pending = list(order)
    done: dict[tuple[str, str], list[Nic]] = {}
    while pending and time.monotonic() < deadline:
        still = []
        for namespace, name in pending:
            found = nics(
                core.read_namespaced_pod(name, namespace, _request_timeout=REQUEST_TIMEOUT)
            )
            if found and all(n.lease("allocated") == "true" for n in found):
                done[(namespace, name)] = found
            else:
                still.append((namespace, name))
        pending = still
        if pending:
            time.sleep(0.2)
    if pending:
        raise DemoError(f"not allocated after {timeout:.0f} s: {pending} (see controller logs)")
    return [nic for key in order for nic in done[key]]
