"""Pods whose deletion is stuck on a NotReady node: reported; released only when asked (issue 11).

No kubelet runs here, which is exactly a dead node's situation: a pod bound
to a node and deleted gracefully stays ``Terminating`` for ever. The test
writes the Node's ``Ready`` condition as the node lifecycle controller would
(that controller does not run in this control plane, so nothing else
changes it). The production controller runs in this process with a short
``node_not_ready_grace``; the node has been NotReady far longer.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY

from ops.lab.cluster import Cluster
from ops.lab.controllers import wait_for
from ops.lab.kube import ControlPlane
from reconciler.kube.resources import PODS
from reconciler.objects import is_deleting
from reconciler.runtime import Runtime
from store.core.identity import AttachmentRef, PodRef, Provider
from tests.controller.inprocess import InProcessController, start_controller, watch_syncs

pytestmark = pytest.mark.controller

NETWORKS = "k8s.v1.cni.cncf.io/networks"
REASON = "PodStuckOnNotReadyNode"


def long_ago() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=10)


@pytest.fixture
def world(control_plane: ControlPlane, kube_namespace: str) -> Iterator[tuple[Cluster, str, str]]:
    """A NAD, a /29 Subnet and a node ``<ns>-node``; yields (cluster, namespace, provider).

    Pods left Terminating are force-deleted at the end, so the namespace can go."""
    cluster, ns = Cluster(control_plane.api_client()), kube_namespace
    provider = f"net.{ns}"
    config = {"type": "macvlan", "ipam": {"type": "kube-ovn", "provider": provider}}
    cluster.create_nad(ns, "net", json.dumps(config))
    cluster.create_subnet(f"{ns}-stuck", provider=provider, cidrBlock="10.100.0.0/29")
    cluster.create_node(f"{ns}-node")
    cluster.set_node_ready(f"{ns}-node", "True", long_ago())
    yield cluster, ns, provider
    for sts in cluster.apps.list_namespaced_stateful_set(ns).items:
        cluster.apps.delete_namespaced_stateful_set(
            sts.metadata.name, ns, propagation_policy="Orphan"
        )
    for pod in cluster.core.list_namespaced_pod(ns).items:
        cluster.delete_pod(ns, pod.metadata.name, wait=False)  # forced: grace 0
    cluster.delete_node(f"{ns}-node")
    cluster.delete_cluster_object("subnets", f"{ns}-stuck")


def running(plane: ControlPlane, *, release: bool) -> InProcessController:
    return start_controller(
        plane, node_not_ready_grace=5.0, release_stuck_pods=release, address_cooldown=0.0
    )


def stuck_pods_metric() -> float | None:
    return REGISTRY.get_sample_value("nicpool_stuck_pods")


def lease(controller: InProcessController, ns: str, pod: str, provider: str) -> object:
    return controller.rt.ipam.get(AttachmentRef(PodRef(ns, pod), Provider(provider)))


def bound_pod(cluster: Cluster, ns: str, name: str, provider: str) -> str:
    """A pod bound to the test node, allocated; returns its address."""
    cluster.create_pod(ns, name, {NETWORKS: f"{ns}/net"}, node=f"{ns}-node")
    return cluster.allocated(ns, name, provider)[f"{provider}.kubernetes.io/ip_address"]


def test_a_stuck_pod_is_reported_and_keeps_its_address_by_default(
    control_plane: ControlPlane, world: tuple[Cluster, str, str]
) -> None:
    cluster, ns, provider = world
    controller = running(control_plane, release=False)
    try:
        address = bound_pod(cluster, ns, "db", provider)
        cluster.set_node_ready(f"{ns}-node", "Unknown", long_ago())
        cluster.delete_pod(ns, "db", wait=False, grace=2)

        event = cluster.wait_event(ns, "db", REASON)
        assert event.type == "Warning"
        assert "kept" in event.message and "partitioned" in event.message
        assert wait_for("the gauge", lambda: stuck_pods_metric() == 1.0)
        assert lease(controller, ns, "db", provider) is not None
        ip_object = cluster.ip_object(f"db.{ns}.{provider}")
        assert ip_object is not None and ip_object["spec"]["ipAddress"] == address

        # The node comes back: nothing is stuck any more.
        cluster.set_node_ready(f"{ns}-node", "True", datetime.datetime.now(datetime.UTC))
        assert wait_for("the gauge back to 0", lambda: stuck_pods_metric() == 0.0)
    finally:
        controller.stop()


def test_with_release_stuck_pods_the_address_goes_to_the_next_pod(
    control_plane: ControlPlane, world: tuple[Cluster, str, str]
) -> None:
    cluster, ns, provider = world
    controller = running(control_plane, release=True)
    try:
        held = {f"p{n}": bound_pod(cluster, ns, f"p{n}", provider) for n in range(5)}
        cluster.create_pod(ns, "waiting", {NETWORKS: f"{ns}/net"})
        cluster.wait_event(ns, "waiting", "SubnetExhausted")
        releases = REGISTRY.get_sample_value("nicpool_stuck_pod_releases_total") or 0.0

        cluster.set_node_ready(f"{ns}-node", "False", long_ago())
        cluster.delete_pod(ns, "p3", wait=False, grace=1)

        got = cluster.allocated(ns, "waiting", provider)
        assert got[f"{provider}.kubernetes.io/ip_address"] == held["p3"]
        assert "released" in cluster.wait_event(ns, "p3", REASON).message
        assert lease(controller, ns, "p3", provider) is None
        assert cluster.ip_object(f"p3.{ns}.{provider}") is None
        assert REGISTRY.get_sample_value("nicpool_stuck_pod_releases_total") == releases + 1
        # Pods on the node that are not being deleted are left alone.
        assert all(lease(controller, ns, p, provider) is not None for p in ("p0", "p4"))
    finally:
        controller.stop()


def test_a_pod_on_a_ready_node_is_not_stuck_until_the_node_turns_not_ready(
    control_plane: ControlPlane, world: tuple[Cluster, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Also shows the Node watch at work: the node's change alone makes the pod stuck."""
    cluster, ns, provider = world
    node_visits: list[bool] = []  # whether "web" was deleting at each visit of its node

    def seen(rt: Runtime, name: str) -> None:
        if name == f"{ns}-node":
            node_visits.append(is_deleting(rt.informer(PODS).get(f"{ns}/web") or {}))

    watch_syncs(monkeypatch, "node", seen)
    controller = running(control_plane, release=True)
    try:
        bound_pod(cluster, ns, "web", provider)
        cluster.delete_pod(ns, "web", wait=False, grace=1)
        # A deleting pod sends its node to the stuck check. That check over (the node
        # Ready), had it judged the pod stuck, the lease and the event would say so.
        wait_for("the node checked with web deleting", lambda: any(node_visits))
        controller.wait_idle()
        assert lease(controller, ns, "web", provider) is not None
        assert REASON not in {event.reason for event in cluster.events(ns, "web")}

        cluster.set_node_ready(f"{ns}-node", "Unknown", long_ago())
        cluster.wait_event(ns, "web", REASON)
        wait_for("the release", lambda: lease(controller, ns, "web", provider) is None)
    finally:
        controller.stop()


def test_a_stuck_statefulset_pod_is_reported_but_keeps_its_address(
    control_plane: ControlPlane, world: tuple[Cluster, str, str]
) -> None:
    """StatefulSet retention holds: its successor takes the same address once the old
    pod is force-deleted (it cannot start before that anyway)."""
    cluster, ns, provider = world
    controller = running(control_plane, release=True)
    try:
        labels = {"app": "db"}
        template = {
            "metadata": {"labels": labels, "annotations": {NETWORKS: f"{ns}/net"}},
            "spec": {"nodeName": f"{ns}-node", "containers": [{"name": "c", "image": "busybox"}]},
        }
        sts = {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": "db"},
            "spec": {"replicas": 1, "serviceName": "db", "selector": {"matchLabels": labels},
                     "template": template},
        }  # fmt: skip
        cluster.apps.create_namespaced_stateful_set(ns, sts)
        before = wait_for("db-0", lambda: cluster.pods(ns, "app=db"))[0]
        address = cluster.allocated(ns, "db-0", provider)[f"{provider}.kubernetes.io/ip_address"]
        cluster.set_node_ready(f"{ns}-node", "Unknown", long_ago())
        cluster.delete_pod(ns, "db-0", wait=False, grace=1)

        assert "kept for its StatefulSet" in cluster.wait_event(ns, "db-0", REASON).message
        assert wait_for("the gauge", lambda: stuck_pods_metric() == 1.0)
        assert lease(controller, ns, "db-0", provider) is not None

        cluster.delete_pod(ns, "db-0", wait=False)  # the operator force-deletes it
        wait_for(
            "the successor",
            lambda: any(p.metadata.uid != before.metadata.uid for p in cluster.pods(ns, "app=db")),
        )
        after = cluster.allocated(ns, "db-0", provider)
        assert after[f"{provider}.kubernetes.io/ip_address"] == address
        assert stuck_pods_metric() == 0.0
    finally:
        controller.stop()
