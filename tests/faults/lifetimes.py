"""Pure: each pod's life as the history shows it, and the fault-free time the run had.

A pod UID is *alive* from its first sighting until it could have been
deleted. The history only bounds that end from below by what the test did
(an ``Intent``: deleting the pod's name, scaling down or deleting its
workload, issued after the pod existed) and, for the deletions nobody asked
for (a ReplicaSet trimming an extra pod), by the watch's DELETED sighting
minus a small slack. A pod is never considered gone earlier than it can
have been, so "released while alive" is never a false alarm.

:class:`Calm` answers "when had a pod had ``bound`` seconds without any
fault since it appeared?", the deadline of the allocation check.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tests.faults.history import FaultWindow, History, Intent, PodSeen

ALLOCATED = "kubernetes.io/allocated"
IP_ADDRESS = "kubernetes.io/ip_address"


@dataclass(frozen=True)
class Life:
    uid: str
    key: str
    """``ns/name``."""
    first_seen: float
    workload: str | None
    expect: tuple[str, ...]
    allocated_at: float | None
    """First sighting with ``allocated: "true"`` for every expected provider."""
    gone_after: float
    """No earlier than this could the pod have been deleted (``inf``: it never was)."""
    deleted_seen: float | None


def allocated(seen: PodSeen) -> bool:
    return all(seen.annotations.get(f"{p}.{ALLOCATED}") == "true" for p in seen.expect)


def lives(history: History, *, slack: float) -> dict[str, Life]:
    """Every pod UID the apiserver watch saw, with its life's bounds."""
    by_uid: dict[str, list[PodSeen]] = {}
    for seen in history.pods:
        by_uid.setdefault(seen.uid, []).append(seen)
    return {uid: _life(uid, seen, history.intents, slack=slack) for uid, seen in by_uid.items()}


def _life(uid: str, seen: list[PodSeen], intents: Sequence[Intent], *, slack: float) -> Life:
    first = seen[0]
    deleted = next((s.at for s in seen if s.kind == "DELETED"), None)
    alloc = next((s.at for s in seen if s.kind != "DELETED" and allocated(s)), None)
    workload = next((s.workload for s in seen if s.workload), None)
    expect = next((s.expect for s in seen if s.expect), ())
    bounds = [
        intent.at
        for intent in intents
        if intent.namespace == first.namespace
        and _may_end(intent, first.name, uid, workload)
        # An intent issued before the pod existed cannot have ended it; the
        # first sighting may lag the creation, so allow the slack here too.
        and intent.at >= first.at - slack
    ]
    if deleted is not None:
        bounds.append(deleted - slack)
    return Life(
        uid=uid,
        key=first.key,
        first_seen=first.at,
        workload=workload,
        expect=expect,
        allocated_at=alloc,
        gone_after=min(bounds, default=math.inf),
        deleted_seen=deleted,
    )


def _may_end(intent: Intent, name: str, uid: str, workload: str | None) -> bool:
    if intent.action == "delete-pod":
        return intent.target == name and intent.uid in (None, uid)
    return workload is not None and intent.target == workload


def merge(windows: Iterable[FaultWindow]) -> list[tuple[float, float]]:
    """Fault windows as disjoint, sorted intervals."""
    merged: list[tuple[float, float]] = []
    for window in sorted(windows, key=lambda w: w.start):
        if merged and window.start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], window.end))
        else:
            merged.append((window.start, window.end))
    return merged


class Calm:
    """Fault-free time between the fault windows."""

    def __init__(self, windows: Iterable[FaultWindow]) -> None:
        self.windows = merge(windows)

    def deadline(self, start: float, bound: float) -> float:
        """The moment ``bound`` fault-free seconds have passed since ``start``."""
        t, remaining = start, bound
        for begin, end in self.windows:
            if end <= t:
                continue
            if begin > t:
                if begin - t >= remaining:
                    return t + remaining
                remaining -= begin - t
            t = max(t, end)
        return t + remaining
