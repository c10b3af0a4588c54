"""When a pod whose deletion hangs on a NotReady node counts as stuck, and reading nodes."""

from __future__ import annotations

import pytest

from reconciler.core.stuck import NodeReadiness, StuckVerdict, stuck_verdict
from reconciler.objects import deletion_time, node_name, node_readiness, parse_time

pytestmark = pytest.mark.unit

GRACE = 300.0
DOWN_SINCE_1000 = NodeReadiness(ready=False, since=1000.0)


@pytest.mark.parametrize(
    ("deletion", "node", "now", "verdict"),
    [
        # Grace period over, node NotReady for longer than the grace: stuck.
        (1200.0, DOWN_SINCE_1000, 1300.0, StuckVerdict(True)),
        # Node NotReady, but not long enough yet: look again when it will be.
        (1200.0, DOWN_SINCE_1000, 1250.0, StuckVerdict(False, 50.0)),
        # The pod's own grace period is not over yet: look again then.
        (1400.0, DOWN_SINCE_1000, 1300.0, StuckVerdict(False, 100.0)),
        # Not being deleted, a Ready node, a node that is gone or says nothing: never.
        (None, DOWN_SINCE_1000, 5000.0, StuckVerdict(False)),
        (1200.0, NodeReadiness(ready=True, since=10.0), 5000.0, StuckVerdict(False)),
        (1200.0, None, 5000.0, StuckVerdict(False)),
        (1200.0, NodeReadiness(ready=False, since=None), 5000.0, StuckVerdict(False)),
    ],
)
def test_stuck_verdict(
    deletion: float | None, node: NodeReadiness | None, now: float, verdict: StuckVerdict
) -> None:
    assert stuck_verdict(deletion=deletion, node=node, now=now, grace=GRACE) == verdict


def node(*conditions: object) -> dict[str, object]:
    return {"metadata": {"name": "n1"}, "status": {"conditions": list(conditions)}}


@pytest.mark.parametrize(
    ("obj", "readiness"),
    [
        (
            node(
                {"type": "Ready", "status": "False", "lastTransitionTime": "1970-01-01T00:16:40Z"}
            ),
            NodeReadiness(False, 1000.0),
        ),
        (
            node(
                {"type": "Ready", "status": "Unknown", "lastTransitionTime": "1970-01-01T00:16:40Z"}
            ),
            NodeReadiness(False, 1000.0),
        ),
        (node({"type": "Ready", "status": "True"}), NodeReadiness(True, None)),
        (
            node({"type": "Ready", "status": "False", "lastTransitionTime": "soon"}),
            NodeReadiness(False, None),
        ),
        (
            node({"type": "Ready", "status": "False", "lastTransitionTime": 1000}),
            NodeReadiness(False, None),
        ),
        # A time without a zone is not the API's: unknown, never a guess.
        (
            node({"type": "Ready", "status": "False", "lastTransitionTime": "1970-01-01T00:16:40"}),
            NodeReadiness(False, None),
        ),
        (node({"type": "MemoryPressure", "status": "False"}), NodeReadiness(True, None)),
        (node("Ready"), NodeReadiness(True, None)),
        ({"status": {"conditions": "Ready"}}, NodeReadiness(True, None)),
        ({"status": []}, NodeReadiness(True, None)),
        ({}, NodeReadiness(True, None)),
    ],
)
def test_node_readiness_reads_only_a_well_formed_ready_condition(
    obj: dict[str, object], readiness: NodeReadiness
) -> None:
    assert node_readiness(obj) == readiness


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("1970-01-01T00:16:40Z", 1000.0), ("1970-01-01T00:16:40+00:00", 1000.0), ("", None),
     (None, None), (12, None), ("yesterday", None)],
)  # fmt: skip
def test_parse_time(value: object, seconds: float | None) -> None:
    assert parse_time(value) == seconds


def test_a_pods_deletion_time_and_node() -> None:
    pod = {
        "metadata": {"name": "p", "deletionTimestamp": "1970-01-01T00:16:40Z"},
        "spec": {"nodeName": "n1"},
    }
    assert (deletion_time(pod), node_name(pod)) == (1000.0, "n1")
    assert (deletion_time({}), node_name({"spec": {"nodeName": ["n1"]}})) == (None, None)
