"""Pods whose deletion is stuck on a node that stopped answering: when one counts as stuck.

A pod is deleted gracefully: the apiserver sets ``deletionTimestamp`` to the
moment its grace period ends and waits for the kubelet to confirm the
containers are gone. A kubelet on a node that is down or cut off never
confirms, so the pod (and, since nicpool releases on deletion, its
addresses) stays until someone force-deletes it, sometimes never.

A pod counts as stuck when all of these hold:

* it is being deleted and its grace period is over (``deletionTimestamp``
  is in the past);
* its node's ``Ready`` condition is not ``True`` (``False`` or ``Unknown``)
  and has not been for at least ``grace`` seconds, measured from the
  condition's ``lastTransitionTime``.

A node whose readiness cannot be read (no Node object: kube-controller-
manager's pod GC force-deletes pods of a node that is gone; no ``Ready``
condition; a transition time that does not parse) never makes a pod stuck:
acting on a guess would hand out an address a live pod may still use.
:func:`stuck_verdict` also says when to look again, so a pod that is not
stuck yet is checked the moment it could be, not on a timer.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NodeReadiness:
    ready: bool
    """The node's ``Ready`` condition is ``True`` (or the node says nothing either way)."""
    since: float | None
    """When the condition last changed (epoch seconds), if known."""


@dataclass(frozen=True)
class StuckVerdict:
    stuck: bool
    recheck_in: float | None = None
    """Seconds until the pod could count as stuck (None: nothing to wait for)."""


NOT_STUCK = StuckVerdict(stuck=False)


def stuck_verdict(
    *, deletion: float | None, node: NodeReadiness | None, now: float, grace: float
) -> StuckVerdict:
    """Whether a pod (being deleted since ``deletion``) on ``node`` is stuck at ``now``."""
    if deletion is None or node is None or node.ready or node.since is None:
        return NOT_STUCK
    wait = max(deletion - now, node.since + grace - now)
    if wait > 0:
        return StuckVerdict(stuck=False, recheck_in=wait)
    return StuckVerdict(stuck=True)
