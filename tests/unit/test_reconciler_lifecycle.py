"""When addresses outlive a pod (StatefulSets) and when GC may free them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.core.gc import has_live_owner, sweep
from reconciler.core.workloads import (
    StatefulSetState,
    retention_on_pod_deletion,
    statefulset_ordinal,
)
from store.core.identity import PodUID
from store.core.records import WorkloadRef

pytestmark = pytest.mark.unit

STS = WorkloadRef("StatefulSet", "web", "uid-a")


@pytest.mark.parametrize(
    ("name", "labels", "ordinal"),
    [
        ("web-0", None, 0),
        ("my-web-12", None, 12),
        ("web", None, None),
        ("web-x", None, None),
        ("web-3", {"apps.kubernetes.io/pod-index": "7"}, 7),
    ],
)
def test_ordinal(name: str, labels: dict[str, str] | None, ordinal: int | None) -> None:
    assert statefulset_ordinal(name, labels) == ordinal


@pytest.mark.parametrize(
    ("workload", "ordinal", "state", "keep", "why"),
    [
        (STS, 1, StatefulSetState("uid-a", 3), True, "keeps ordinal 1"),
        (STS, 3, StatefulSetState("uid-a", 3), False, "scaled down"),
        (STS, 0, None, False, "gone"),
        (STS, 0, StatefulSetState("uid-b", 3), False, "UID changed"),
        (STS, 0, StatefulSetState("uid-a", 3, deleting=True), False, "being deleted"),
        (STS, None, StatefulSetState("uid-a", 3), False, "no ordinal"),
        (WorkloadRef("Deployment", "d", "x"), 0, None, False, "not a StatefulSet"),
        (None, 0, None, False, "not a StatefulSet"),
    ],
)
def test_statefulset_retention(
    workload: WorkloadRef | None,
    ordinal: int | None,
    state: StatefulSetState | None,
    keep: bool,
    why: str,
) -> None:
    decision = retention_on_pod_deletion(workload, ordinal, state)
    assert decision.keep is keep
    assert why in decision.why


def test_live_owner() -> None:
    assert has_live_owner(PodUID("a"), PodUID("a"))
    assert not has_live_owner(PodUID("a"), None)
    assert not has_live_owner(PodUID("a"), PodUID("b"))
    assert has_live_owner(PodUID("a"), None, retained=True)


def test_gc_frees_only_after_two_sightings_grace_apart() -> None:
    first = sweep({}, ["x", "y"], now=100.0, grace=30.0)
    assert first.free == () and first.suspects == {"x": 100.0, "y": 100.0}
    early = sweep(first.suspects, ["x", "y"], now=110.0, grace=30.0)
    assert early.free == () and early.suspects == {"x": 100.0, "y": 100.0}
    # y got its pod back: forgotten; x still orphaned after the grace period: freed.
    late = sweep(early.suspects, ["x"], now=130.0, grace=30.0)
    assert late.free == ("x",) and late.suspects == {}


@given(
    st.lists(st.sets(st.integers(0, 5)), min_size=1, max_size=8),
    st.lists(st.floats(0, 100), min_size=8, max_size=8),
)
def test_gc_never_frees_what_was_not_orphaned_at_two_sweeps_grace_apart(
    rounds: list[set[int]], gaps: list[float]
) -> None:
    suspects: dict[int, float] = {}
    now = 0.0
    history: list[tuple[float, set[int]]] = []
    for orphans, gap in zip(rounds, gaps, strict=False):
        now += gap
        result = sweep(suspects, orphans, now=now, grace=30.0)
        history.append((now, orphans))
        for key in result.free:
            # continuously orphaned from some sweep at least 30 s ago until now
            streak = [t for t, seen in history if key in seen]
            assert key in orphans and now - min(streak) >= 30.0
        suspects = result.suspects
