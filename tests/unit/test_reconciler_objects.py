"""Kubernetes objects as dicts -> the values planning and retention decide on."""

from __future__ import annotations

import pytest

from reconciler.objects import (
    has_finished,
    nad_config,
    pod_view,
    statefulset_state,
    workload_of,
)

pytestmark = pytest.mark.unit


def owned(kind: str, name: str, uid: str) -> dict:
    return {"ownerReferences": [{"kind": kind, "name": name, "uid": uid, "controller": True}]}


def test_deployment_pod_is_traced_through_its_replicaset() -> None:
    rs = {"metadata": {"name": "web-7d9", "namespace": "ns", **owned("Deployment", "web", "d1")}}
    pod = {
        "metadata": {
            "name": "web-7d9-x",
            "namespace": "ns",
            "uid": "p1",
            **owned("ReplicaSet", "web-7d9", "r1"),
        }
    }
    found = workload_of(pod, {"ns/web-7d9": rs}.get)
    assert (found.kind, found.name, found.uid) == ("Deployment", "web", "d1")


def test_statefulset_pod_has_its_ordinal() -> None:
    pod = {
        "metadata": {
            "name": "db-2",
            "namespace": "ns",
            "uid": "p",
            "annotations": {"a": "b"},
            **owned("StatefulSet", "db", "s1"),
        }
    }
    view = pod_view(pod, {}.get)
    assert (view.workload.kind, view.ordinal, view.annotations) == ("StatefulSet", 2, {"a": "b"})


def test_bare_pod_and_orphaned_replicaset() -> None:
    assert workload_of({"metadata": {"name": "p"}}, {}.get) is None
    pod = {"metadata": {"name": "x", "namespace": "ns", **owned("ReplicaSet", "rs", "r")}}
    assert workload_of(pod, {}.get).kind == "ReplicaSet"


def test_empty_nad_spec_has_no_config() -> None:
    assert nad_config({"metadata": {"name": "macvlan-conf-2"}}) is None
    assert nad_config({"spec": {"config": "  "}}) is None
    assert nad_config({"spec": {"config": "{}"}}) == "{}"


def test_statefulset_state() -> None:
    sts = {
        "metadata": {"uid": "s", "deletionTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"replicas": 0},
    }
    assert statefulset_state(sts).replicas == 0 and statefulset_state(sts).deleting
    assert statefulset_state(None) is None


@pytest.mark.parametrize(
    ("status", "finished"),
    [
        ({"phase": "Succeeded"}, True),
        ({"phase": "Failed", "reason": "Evicted"}, True),
        ({"phase": "Failed"}, True),
        ({"phase": "Running"}, False),
        ({"phase": "Pending"}, False),
        ({"phase": "Unknown"}, False),
        ({"phase": "succeeded"}, False),  # phases are case-sensitive in the API
        ({"phase": ["Succeeded"]}, False),
        ({}, False),
        (None, False),
        ("Succeeded", False),
    ],
)
def test_only_the_terminal_phases_count_as_finished(status: object, finished: bool) -> None:
    assert has_finished({"metadata": {"name": "p"}, "status": status}) is finished
