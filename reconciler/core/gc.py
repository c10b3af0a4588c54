"""The garbage collector's decisions: which attachments have lost their pod for good.

A lease is freed by GC only when (1) its owner is missing in one sweep,
(2) still missing in a later sweep at least ``grace`` seconds after the
first sighting, and (3) still missing when the controller re-reads just
before freeing (that last check is I/O and lives in the controller). A
watch that lags, a pod created a moment ago, a leader that just took over
with a cold cache: each is covered by one of the three.

"Owner missing" (:func:`has_live_owner`) means: no pod with that namespace
and name and the same UID, and no StatefulSet retention that keeps the
address for a successor.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from store.core.identity import PodUID

K = TypeVar("K", bound=Hashable)


def has_live_owner(lease_uid: PodUID, pod_uid: PodUID | None, *, retained: bool = False) -> bool:
    """True when the attachment still belongs to someone: its pod, or a retaining StatefulSet."""
    return pod_uid == lease_uid or retained


@dataclass(frozen=True)
class GcSweep(Generic[K]):
    suspects: dict[K, float]
    """Orphans seen so far and when first seen; carry into the next sweep."""
    free: tuple[K, ...]
    """Orphans seen twice, ``grace`` apart: re-check each, then free it."""


def sweep(
    suspects: Mapping[K, float], orphans: Iterable[K], *, now: float, grace: float
) -> GcSweep[K]:
    """One GC pass: remember new orphans, forget recovered ones, pick the ones to free."""
    next_suspects: dict[K, float] = {}
    free: list[K] = []
    for key in orphans:
        first_seen = suspects.get(key)
        if first_seen is None:
            next_suspects[key] = now
        elif now - first_seen >= grace:
            free.append(key)
        else:
            next_suspects[key] = first_seen
    return GcSweep(suspects=next_suspects, free=tuple(free))
