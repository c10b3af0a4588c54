"""Pods whose deletion is stuck on a NotReady node: reported, and released only if asked.

nicpool releases a pod's addresses when the pod is gone. A pod on a node
that went down is deleted gracefully and then waits for a kubelet that never
answers: it stays ``Terminating`` until someone force-deletes it, and its
addresses stay taken. When :func:`reconciler.core.stuck.stuck_verdict` says
such a pod is stuck (its grace period over, its node NotReady for
``node_not_ready_grace``), the leader

* reports it: a Warning Event on the pod (``PodStuckOnNotReadyNode``) and the
  gauge ``nicpool_stuck_pods`` (pods stuck that still hold addresses);
* with ``release_stuck_pods`` (``--release-stuck-pods``, off by default),
  releases its addresses as if it were gone (StatefulSet retention still
  applies: a StatefulSet pod's successor cannot start before the old pod is
  force-deleted anyway), counted in ``nicpool_stuck_pod_releases_total``.

The risk of releasing, and why it is opt-in: NotReady means the control
plane cannot reach the kubelet, not that the pod stopped. A node cut off by
a network partition may still run the pod with its address, and the next pod
given that address would share it on the wire until the node comes back and
kills the old pod. Spiderpool and Whereabouts' reconciler take the same risk
when asked; Kube-OVN releases once the pod's grace period is over.

Work is keyed by node (``("node", name)``): a node turning NotReady or Ready
again, and a pod starting to be deleted on it, queue the node; its sync
looks at the pods bound to it and schedules itself again for the moment the
next one could become stuck.
"""

from __future__ import annotations

import logging
import time

from reconciler import metrics
from reconciler.core.stuck import stuck_verdict
from reconciler.kube.client import JSON
from reconciler.kube.informer import object_key
from reconciler.kube.resources import NODES, PODS
from reconciler.objects import deletion_time, node_name, node_readiness, pod_ref, pod_uid
from reconciler.podflow import release_unless_retained, require_index
from reconciler.refusals import involved
from reconciler.runtime import Runtime

log = logging.getLogger("nicpool.stuck")

REASON = "PodStuckOnNotReadyNode"
RECHECK_MARGIN = 0.5
"""Seconds past the moment a pod could become stuck before its node is looked at again."""


def sync_node(rt: Runtime, name: str) -> bool:
    """Report (and, if asked, release) the pods stuck on node ``name``."""
    require_index(rt)
    node = rt.informer(NODES).get(name)
    readiness = node_readiness(node) if node is not None else None
    now, grace = time.time(), rt.settings.node_not_ready_grace
    recheck: float | None = None
    still_stuck: set[str] = set()
    if readiness is not None and not readiness.ready:
        for pod in rt.informer(PODS).items():
            if node_name(pod) != name:
                continue
            verdict = stuck_verdict(
                deletion=deletion_time(pod), node=readiness, now=now, grace=grace
            )
            if verdict.stuck and _holds_addresses(rt, pod):
                _stuck(rt, pod, name)
                if object_key(pod) in rt.stuck:
                    still_stuck.add(object_key(pod))
            elif verdict.recheck_in is not None:
                wait = verdict.recheck_in
                recheck = wait if recheck is None else min(recheck, wait)
    for key, on in dict(rt.stuck).items():  # a copy: the pod handler pops entries too
        if on == name and key not in still_stuck:
            rt.stuck.pop(key, None)  # the node is back, or the pod is gone or released
    if recheck is not None:
        rt.queue.add_after(("node", name), recheck + RECHECK_MARGIN)
    return True


def _holds_addresses(rt: Runtime, pod: JSON) -> bool:
    uid = pod_uid(pod)
    return any(att.uid == uid for att in rt.index.of_pod(pod_ref(pod)))


def _stuck(rt: Runtime, pod: JSON, node: str) -> None:
    """Release (if asked) the pod's addresses; report it the first time it is seen stuck."""
    key = object_key(pod)
    first = key not in rt.stuck
    if not rt.settings.release_stuck_pods:
        outcome = "kept (--release-stuck-pods would free them)"
    elif _release(rt, pod, node):
        outcome = "released (--release-stuck-pods)"
    else:
        outcome = "kept for its StatefulSet"
    if outcome.startswith("released"):
        rt.stuck.pop(key, None)
    else:
        rt.stuck[key] = node
    if first:
        log.warning("%s: deletion stuck on NotReady node %s; addresses %s", key, node, outcome)
        rt.recorder.warn(
            involved(pod),
            REASON,
            f"deletion stuck: node {node} is NotReady beyond "
            f"{rt.settings.node_not_ready_grace:g} s and the pod's grace period is over; its "
            f"addresses are {outcome}. A partitioned node may still be using them.",
        )


def _release(rt: Runtime, pod: JSON, node: str) -> bool:
    """Release the pod's NICs unless StatefulSet retention keeps one; True when all went."""
    uid, released_all = pod_uid(pod), True
    for att in rt.index.of_pod(pod_ref(pod)):
        if att.uid != uid:
            continue
        if release_unless_retained(rt, att):
            metrics.STUCK_POD_RELEASES.inc()
            log.warning("%s: released %s (stuck on NotReady node %s)", att.ref, att.ip_csv(), node)
        else:
            released_all = False
    return released_all
